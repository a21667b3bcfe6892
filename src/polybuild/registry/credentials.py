"""Registry credentials from Docker's config.json: `auths`, `credHelpers` and `credsStore`.

The file is `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. Docker Hub's
credentials live under the key `https://index.docker.io/v1/`; other registries under their
`host[:port]` (keys with a scheme or path are matched by host, as the Docker CLI does).
Credential helpers are run as `docker-credential-<name> get` with the server on stdin.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polybuild.errors import AuthenticationError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# A helper's username for an identity (OAuth2 refresh) token instead of a password.
_TOKEN_USERNAME = "<token>"
_HELPER_TIMEOUT = 30


@dataclass(frozen=True, slots=True)
class Credentials:
    """What to authenticate with, and where it came from (named in error messages)."""

    username: str = ""
    password: str = ""
    identity_token: str = ""  # an OAuth2 refresh token for the token server
    registry_token: str = ""  # a bearer token to send as it is
    source: str = ""

    def __repr__(self) -> str:  # never print secrets in tracebacks
        return f"Credentials(username={self.username!r}, source={self.source!r})"


def docker_config_dir() -> Path:
    """$DOCKER_CONFIG, else ~/.docker."""
    env = os.environ.get("DOCKER_CONFIG")
    return Path(env) if env else Path.home() / ".docker"


def server_key(host: str) -> str:
    """The key Docker files a registry's credentials under."""
    return DOCKER_HUB_KEY if host in _DOCKER_HUB_HOSTS else host


def _hostname(key: str) -> str:
    """Docker's convertToHostname: drop the scheme and any path."""
    for scheme in ("http://", "https://"):
        key = key.removeprefix(scheme)
    return key.split("/", 1)[0]


class DockerCredentials:
    """Looks credentials up in Docker's config.json (read once) and its credential helpers."""

    def __init__(self, config_dir: Path | None = None) -> None:
        self.path = (config_dir or docker_config_dir()) / "config.json"
        self._document: dict[str, Any] | None = None
        self._found: dict[str, Credentials | None] = {}

    def _config(self) -> dict[str, Any]:
        if self._document is None:
            try:
                document = json.loads(self.path.read_bytes())
            except FileNotFoundError:
                document = {}
            except (OSError, ValueError) as exc:
                raise AuthenticationError(
                    f"cannot read Docker's credentials file {self.path}: {exc}",
                    hint="fix or remove the file (or point $DOCKER_CONFIG elsewhere)",
                ) from None
            self._document = document if isinstance(document, dict) else {}
        return self._document

    def get(self, host: str) -> Credentials | None:
        """The credentials for registry `host` (a reference domain), or None (anonymous)."""
        if host not in self._found:
            self._found[host] = self._lookup(host)
        return self._found[host]

    def _lookup(self, host: str) -> Credentials | None:
        config = self._config()
        key = server_key(host)
        helpers = config.get("credHelpers") or {}
        helper = helpers.get(key) or helpers.get(host)
        if helper:
            return run_helper(str(helper), key)
        if config.get("credsStore"):
            found = run_helper(str(config["credsStore"]), key)
            if found is not None:
                return found
        return self._from_auths(host, key, config.get("auths") or {})

    def _from_auths(self, host: str, key: str, auths: dict[str, Any]) -> Credentials | None:
        entry = auths.get(key)
        if entry is None:
            wanted = "index.docker.io" if key == DOCKER_HUB_KEY else host
            entry = next((v for k, v in auths.items() if _hostname(k) == wanted), None)
        if not isinstance(entry, dict):
            return None
        username = str(entry.get("username") or "")
        password = str(entry.get("password") or "")
        encoded = entry.get("auth")
        if encoded:
            try:
                decoded = base64.b64decode(str(encoded), validate=False).decode()
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            username, sep, password = decoded.partition(":")
            if not sep:
                raise AuthenticationError(
                    f"invalid `auth` entry for {key} in {self.path}",
                    hint="it must be base64 of USER:PASSWORD; log in again",
                )
        credentials = Credentials(
            username=username,
            password=password,
            identity_token=str(entry.get("identitytoken") or ""),
            registry_token=str(entry.get("registrytoken") or ""),
            source=str(self.path),
        )
        empty = not (username or credentials.identity_token or credentials.registry_token)
        return None if empty else credentials


def run_helper(name: str, server: str) -> Credentials | None:
    """Ask `docker-credential-<name>` for `server`'s credentials; None when it has none."""
    program = f"docker-credential-{name}"
    path = shutil.which(program)
    if path is None:
        raise AuthenticationError(
            f"credential helper {program} (configured in Docker's config.json) is not in PATH",
            hint="install it, or remove it from credsStore/credHelpers",
        )
    try:
        result = subprocess.run(
            [path, "get"],
            input=server.encode(),
            capture_output=True,
            timeout=_HELPER_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AuthenticationError(f"credential helper {program} failed: {exc}") from None
    output = result.stdout.decode(errors="replace").strip()
    if result.returncode != 0:
        if "credentials not found" in output.lower():
            return None
        message = output or result.stderr.decode(errors="replace").strip()
        raise AuthenticationError(
            f"credential helper {program} failed for {server}: {message}",
            hint=f"check the helper with: echo {server} | {program} get",
        )
    try:
        answer = json.loads(output)
        username, secret = str(answer.get("Username", "")), str(answer["Secret"])
    except (ValueError, KeyError, AttributeError):
        raise AuthenticationError(
            f"credential helper {program} gave an answer that is not its JSON protocol",
            hint='it must print {"ServerURL": ..., "Username": ..., "Secret": ...}',
        ) from None
    source = f"credential helper {program}"
    if username == _TOKEN_USERNAME:
        return Credentials(identity_token=secret, source=source)
    return Credentials(username=username, password=secret, source=source)
