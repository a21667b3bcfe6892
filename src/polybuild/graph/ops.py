"""Build-graph operations; each carries its Platform and a digest of its definition and inputs.

The digest is SHA-256 over canonical JSON (sorted keys, no spaces, ASCII) of the op's own
fields plus its inputs' digests, so equal work for several target platforms gets one digest and
the solver runs it once. `None` as an input means the empty root filesystem (`scratch`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from polybuild.graph.devices import DeviceRequest
from polybuild.platforms import Platform


def canonical_json(value: Any) -> bytes:
    """The bytes digests are taken over: sorted keys, no whitespace, ASCII only."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def _platform(platform: Platform) -> dict[str, str]:
    return {"os": platform.os, "architecture": platform.architecture, "variant": platform.variant}


def _input(op: Op | None) -> str:
    return op.digest if op is not None else ""


class _Digested:
    """Mixin: computes `digest` once, after the frozen dataclass is built."""

    __slots__ = ()
    kind = ""

    def definition(self) -> dict[str, Any]:
        raise NotImplementedError

    def inputs(self) -> tuple[Op | None, ...]:
        return ()

    def _seal(self) -> None:
        payload = {
            "kind": self.kind,
            "def": self.definition(),
            "inputs": [_input(op) for op in self.inputs()],
        }
        digest = "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()
        object.__setattr__(self, "digest", digest)


@dataclass(frozen=True, slots=True)
class ImageSource(_Digested):
    """An image to pull by reference for one platform (resolved to a digest by the solver)."""

    ref: str
    platform: Platform
    digest: str = field(init=False, repr=False, compare=False)
    kind = "source.image"

    def __post_init__(self) -> None:
        self._seal()

    def definition(self) -> dict[str, Any]:
        return {"ref": self.ref, "platform": _platform(self.platform)}


@dataclass(frozen=True, slots=True)
class LocalSource(_Digested):
    """The client's build context (or another named local directory), minus ignored paths."""

    name: str
    platform: Platform
    exclude: tuple[str, ...] = ()
    digest: str = field(init=False, repr=False, compare=False)
    kind = "source.local"

    def __post_init__(self) -> None:
        self._seal()

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "exclude": list(self.exclude),
            "platform": _platform(self.platform),
        }


@dataclass(frozen=True, slots=True)
class InlineFile:
    """One file an InlineSource creates (a heredoc's content)."""

    path: str
    data: str
    mode: int = 0o644


@dataclass(frozen=True, slots=True)
class InlineSource(_Digested):
    """Files written from the Dockerfile itself (heredocs) into an empty tree."""

    files: tuple[InlineFile, ...]
    platform: Platform
    digest: str = field(init=False, repr=False, compare=False)
    kind = "source.inline"

    def __post_init__(self) -> None:
        self._seal()

    def definition(self) -> dict[str, Any]:
        files = [{"path": f.path, "data": f.data, "mode": f.mode} for f in self.files]
        return {"files": files, "platform": _platform(self.platform)}


@dataclass(frozen=True, slots=True)
class Mount:
    """A mount for an Exec: bind (from `source`), cache, tmpfs, secret or ssh."""

    type: str
    target: str
    source: Op | None = None  # bind/cache seed: a stage, image or the context
    source_path: str = "/"
    readonly: bool = False
    cache_id: str = ""
    sharing: str = "shared"
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None
    required: bool = False
    size: int = 0
    secret_id: str = ""  # secret and ssh ids
    env: str = ""  # secret exposed as an environment variable

    def definition(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "target": self.target,
            "source": _input(self.source) if self.source is not None else None,
            "source_path": self.source_path,
            "readonly": self.readonly,
            "cache_id": self.cache_id,
            "sharing": self.sharing,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "required": self.required,
            "size": self.size,
            "secret_id": self.secret_id,
            "env": self.env,
        }


@dataclass(frozen=True, slots=True)
class Exec(_Digested):
    """Run a process on `rootfs`; the result is the changed root filesystem."""

    rootfs: Op | None
    argv: tuple[str, ...]
    env: tuple[str, ...]
    cwd: str
    user: str
    platform: Platform
    mounts: tuple[Mount, ...] = ()
    network: str = "default"
    security: str = "sandbox"
    devices: tuple[DeviceRequest, ...] = ()  # RUN --device: CDI devices the step asks for
    description: str = field(default="", compare=False)  # for progress output only
    location: tuple[int, int] | None = field(default=None, compare=False)  # Dockerfile lines
    digest: str = field(init=False, repr=False, compare=False)
    kind = "exec"

    def __post_init__(self) -> None:
        self._seal()

    def inputs(self) -> tuple[Op | None, ...]:
        return (self.rootfs, *(m.source for m in self.mounts if m.source is not None))

    def definition(self) -> dict[str, Any]:
        return {
            "argv": list(self.argv),
            "env": list(self.env),
            "cwd": self.cwd,
            "user": self.user,
            "mounts": [m.definition() for m in self.mounts],
            "network": self.network,
            "security": self.security,
            "platform": _platform(self.platform),
            # only when asked for, so the keys of steps without devices stay as they were
            **({"devices": [[d.name, d.required] for d in self.devices]} if self.devices else {}),
        }


@dataclass(frozen=True, slots=True)
class Copy(_Digested):
    """COPY or ADD: files from `source` (or a URL) onto `dest_base` at `dest`."""

    dest_base: Op | None
    source: Op | None
    sources: tuple[str, ...]
    dest: str
    platform: Platform
    chmod: str = ""
    chown: str = ""
    link: bool = False
    parents: bool = False
    exclude: tuple[str, ...] = ()
    is_add: bool = False
    url: str = ""
    unpack: bool | None = None
    checksum: str = ""
    keep_git_dir: bool = False
    description: str = field(default="", compare=False)
    location: tuple[int, int] | None = field(default=None, compare=False)  # Dockerfile lines
    digest: str = field(init=False, repr=False, compare=False)
    kind = "file.copy"

    def __post_init__(self) -> None:
        self._seal()

    def inputs(self) -> tuple[Op | None, ...]:
        return (self.dest_base, self.source)

    def definition(self) -> dict[str, Any]:
        return {
            "sources": list(self.sources),
            "dest": self.dest,
            "chmod": self.chmod,
            "chown": self.chown,
            "link": self.link,
            "parents": self.parents,
            "exclude": list(self.exclude),
            "add": self.is_add,
            "url": self.url,
            "unpack": self.unpack,
            "checksum": self.checksum,
            "keep_git_dir": self.keep_git_dir,
            "platform": _platform(self.platform),
        }


@dataclass(frozen=True, slots=True)
class Mkdir(_Digested):
    """Create a directory and its parents (WORKDIR), owned by `user` when given."""

    base: Op | None
    path: str
    platform: Platform
    mode: int = 0o755
    user: str = ""
    location: tuple[int, int] | None = field(default=None, compare=False)  # Dockerfile lines
    digest: str = field(init=False, repr=False, compare=False)
    kind = "file.mkdir"

    def __post_init__(self) -> None:
        self._seal()

    def inputs(self) -> tuple[Op | None, ...]:
        return (self.base,)

    def definition(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "mode": self.mode,
            "user": self.user,
            "platform": _platform(self.platform),
        }


@dataclass(frozen=True, slots=True)
class Merge(_Digested):
    """Layer several trees on each other in order (COPY --link)."""

    layers: tuple[Op | None, ...]
    platform: Platform
    digest: str = field(init=False, repr=False, compare=False)
    kind = "merge"

    def __post_init__(self) -> None:
        self._seal()

    def inputs(self) -> tuple[Op | None, ...]:
        return self.layers

    def definition(self) -> dict[str, Any]:
        return {"platform": _platform(self.platform)}


Op = ImageSource | LocalSource | InlineSource | Exec | Copy | Mkdir | Merge


def walk(roots: tuple[Op | None, ...]) -> tuple[Op, ...]:
    """Every op reachable from `roots`, inputs before their users, each digest once."""
    seen: set[str] = set()
    order: list[Op] = []

    def visit(op: Op | None) -> None:
        if op is None or op.digest in seen:
            return
        seen.add(op.digest)
        for child in op.inputs():
            visit(child)
        order.append(op)

    for root in roots:
        visit(root)
    return tuple(order)
