"""What a build is asked to do (the CLI's and the Python API's common shape), and its result."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.errors import UsageError
from polybuild.image import Descriptor
from polybuild.platforms import Platform
from polybuild.solver.execop import BuildSecrets


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """One `polybuild build`: flags mirror `docker buildx build`."""

    context: Path
    dockerfile: Path | None = None  # default: CONTEXT/Dockerfile
    dockerfile_text: bytes | None = None  # `-f -`
    platforms: tuple[Platform, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    tags: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    push: bool = False
    load: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: tuple[str, ...] = ()
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    secrets: tuple[str, ...] = ()
    ssh: tuple[str, ...] = ()
    network: str = "default"
    progress: str = "auto"
    iidfile: Path | None = None
    metadata_file: Path | None = None
    jobs: int | None = None
    call: str = "build"  # "build", or "outline" to print the graph without building
    builder: str = ""  # --builder (default: $BUILDX_BUILDER or the one `polybuild use` chose)
    allow: tuple[str, ...] = ()  # --allow entitlements (security.insecure)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build produced: the index (when images were assembled) and per-platform images."""

    index: Descriptor | None
    images: tuple[object, ...]  # PlatformImage per platform (typed in build.assemble)
    executed: tuple[str, ...]  # op digests that ran (not cached)
    emulated_seconds: tuple[tuple[str, float], ...] = ()
    outline: str = ""


def _csv(spec: str, flag: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"{flag}: invalid value {spec!r}: expected key=value pairs")
        fields[key.strip()] = value.strip()
    return fields


def parse_secrets(specs: tuple[str, ...], ssh: tuple[str, ...]) -> BuildSecrets:
    """`--secret id=X,src=FILE|env=VAR` (type=file|env) and `--ssh default|ID=SOCKET`."""
    secrets: dict[str, bytes] = {}
    for spec in specs:
        fields = _csv(spec, "--secret")
        secret_id = fields.get("id") or ""
        source = fields.get("src") or fields.get("source") or ""
        env_name = fields.get("env") or ""
        kind = fields.get("type", "env" if env_name and not source else "file")
        if kind == "env" or (not source and env_name):
            name = env_name or source or secret_id
            if name not in os.environ:
                raise UsageError(f"--secret {spec}: environment variable {name} is not set")
            secrets[secret_id or name] = os.environ[name].encode()
            continue
        path = Path(source or secret_id).expanduser()
        try:
            secrets[secret_id or path.name] = path.read_bytes()
        except OSError as exc:
            raise UsageError(f"--secret {spec}: cannot read {source}: {exc.strerror}") from exc
    sockets: dict[str, str] = {}
    for spec in ssh:
        ident, _, socket = spec.partition("=")
        socket = socket or os.environ.get("SSH_AUTH_SOCK", "")
        if not socket:
            raise UsageError(f"--ssh {spec}: no socket given and SSH_AUTH_SOCK is not set")
        if not Path(socket).exists():
            raise UsageError(f"--ssh {spec}: {socket} does not exist")
        sockets[ident or "default"] = socket
    return BuildSecrets(secrets, sockets)
