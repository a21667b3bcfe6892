"""Registry host settings from a TOML file shaped like BuildKit's `[registry."host"]` sections.

    [registry."docker.io"]
    mirrors = ["127.0.0.1:5000", "mirror.example.com/proxy.docker.io"]

    [registry."registry.internal:5000"]
    http = true                 # plain HTTP only
    insecure = true             # HTTPS without certificate verification (then plain HTTP)
    ca = ["/etc/ssl/internal-ca.pem"]
    [[registry."registry.internal:5000".keypair]]
    key = "/etc/ssl/client.key"
    cert = "/etc/ssl/client.pem"

The file is `--config FILE` when given, else $POLYBUILD_CONFIG, else `polybuild.toml` in the
user's config directory; a missing default file means no settings.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from polybuild.errors import UsageError
from polybuild.image import reference

CONFIG_ENV = "POLYBUILD_CONFIG"
CONFIG_NAME = "polybuild.toml"
_HOST_KEYS = frozenset({"mirrors", "http", "insecure", "ca", "keypair"})
# Names users write for Docker Hub; all of them configure the same registry.
_DOCKER_HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A client certificate and its key, for registries that ask for TLS client auth."""

    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class Mirror:
    """A pull-through mirror: `host[:port]` and an optional repository path prefix."""

    host: str
    prefix: str = ""

    @classmethod
    def parse(cls, text: str, where: str) -> Mirror:
        for scheme in ("https://", "http://"):
            text = text.removeprefix(scheme)
        host, _, prefix = text.strip("/").partition("/")
        if not reference.is_domain(host):
            raise UsageError(
                f"{where}: invalid mirror {text!r}",
                hint='mirrors are host[:port][/path], for example "127.0.0.1:5000"',
            )
        return cls(host, prefix.strip("/"))

    def __str__(self) -> str:
        return f"{self.host}/{self.prefix}" if self.prefix else self.host


@dataclass(frozen=True, slots=True)
class HostConfig:
    """How to reach one registry host."""

    mirrors: tuple[Mirror, ...] = ()
    http: bool = False
    insecure: bool = False
    ca: tuple[Path, ...] = ()
    keypairs: tuple[KeyPair, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistryConfig:
    """Settings per registry host, and the file they came from (None: defaults only)."""

    hosts: Mapping[str, HostConfig] = field(default_factory=dict)
    source: Path | None = None

    def host(self, name: str) -> HostConfig:
        """The settings for registry `name` (a reference's domain); defaults when unset."""
        if name in self.hosts:
            return self.hosts[name]
        if name in _DOCKER_HUB_ALIASES:
            for alias in _DOCKER_HUB_ALIASES:
                if alias in self.hosts:
                    return self.hosts[alias]
        return HostConfig()


def default_config_path() -> Path:
    """`polybuild.toml` in the user's configuration directory."""
    import platformdirs  # lazy: only needed when no explicit file is given

    return Path(platformdirs.user_config_dir("polybuild", appauthor=False)) / CONFIG_NAME


def find_config(explicit: Path | None = None) -> Path | None:
    """The configuration file to read: explicit, then $POLYBUILD_CONFIG, then the default."""
    if explicit is not None:
        return explicit
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    path = default_config_path()
    return path if path.is_file() else None


def load_config(explicit: Path | None = None) -> RegistryConfig:
    """Read the registry settings (see the module docstring); UsageError if the file is bad."""
    path = find_config(explicit)
    if path is None:
        return RegistryConfig()
    try:
        with path.open("rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise UsageError(
            f"configuration file {path} does not exist",
            hint=f"create it, or unset {CONFIG_ENV} / drop --config",
        ) from None
    except OSError as exc:
        raise UsageError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"configuration file {path} is not valid TOML: {exc}") from None
    return parse_config(document, path)


def parse_config(document: Mapping[str, Any], path: Path | None = None) -> RegistryConfig:
    """The registry settings of a decoded TOML document (other sections are ignored)."""
    where = str(path or "configuration")
    section = document.get("registry", {})
    if not isinstance(section, dict):
        raise UsageError(f"{where}: [registry] must be a table of hosts")
    hosts = {
        name: _host(name, table, f"{where}: [registry.{name!r}]", path)
        for name, table in section.items()
    }
    return RegistryConfig(hosts, path)


def _host(name: str, table: object, where: str, path: Path | None) -> HostConfig:
    if not reference.is_domain(name):
        raise UsageError(f"{where}: {name!r} is not a registry host[:port]")
    if not isinstance(table, dict):
        raise UsageError(f"{where}: expected a table")
    unknown = sorted(set(table) - _HOST_KEYS)
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {', '.join(unknown)}",
            hint="known keys: " + ", ".join(sorted(_HOST_KEYS)),
        )
    base = path.parent if path is not None else Path.cwd()
    mirrors = tuple(Mirror.parse(m, where) for m in _strings(table, "mirrors", where))
    ca = tuple(base / c for c in _strings(table, "ca", where))
    keypairs = []
    for pair in table.get("keypair", []):
        if not isinstance(pair, dict) or not {"key", "cert"} <= set(pair):
            raise UsageError(f"{where}: each keypair needs `key` and `cert`")
        keypairs.append(KeyPair(base / str(pair["cert"]), base / str(pair["key"])))
    return HostConfig(
        mirrors=mirrors,
        http=_bool(table, "http", where),
        insecure=_bool(table, "insecure", where),
        ca=ca,
        keypairs=tuple(keypairs),
    )


def _strings(table: Mapping[str, object], key: str, where: str) -> list[str]:
    value = table.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: `{key}` must be a list of strings")
    return list(value)


def _bool(table: Mapping[str, object], key: str, where: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise UsageError(f"{where}: `{key}` must be true or false")
    return value
