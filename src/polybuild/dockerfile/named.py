"""`--build-context` names as the frontend looks them up: a name in FROM or `--from` stands
for an image (`docker-image://`, an OCI layout) or a directory, matched as BuildKit matches
it (the familiar reference without `:latest`, so `alpine`, `alpine:latest` and
`docker.io/library/alpine` are one name; `scratch` and `context` never are)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from polybuild.errors import InvalidReferenceError
from polybuild.graph import Copy, LocalSource, Op
from polybuild.image import reference
from polybuild.platforms import Platform, format_platform

# The LocalSource name of a named directory: never the build context's own ("context").
LOCAL_PREFIX = "named-context:"


def context_key(name: str) -> str:
    """BuildKit's key for a named context: `docker.io/library/x:latest` -> `x` (a platform
    after `::` kept: `x::linux/arm64` names x for that platform only)."""
    if "::" in name:
        name, platform = name.split("::", 1)
        return f"{context_key(name)}::{platform}"
    try:
        familiar = reference.parse(name).familiar()
    except InvalidReferenceError:
        return name
    return familiar.removesuffix(":latest")


def local_name(name: str) -> str:
    """The LocalSource name of the named directory `name`."""
    return LOCAL_PREFIX + context_key(name)


@dataclass(frozen=True, slots=True)
class NamedContexts:
    """What the build's named contexts replace: images by reference, directories (each with
    the patterns its own .dockerignore excludes)."""

    images: Mapping[str, str] = field(default_factory=dict)  # name -> image reference
    dirs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # name -> excludes

    def find(
        self, name: str, build_platform: Platform, platform: Platform
    ) -> str | LocalSource | None:
        """The image reference or the directory's source `name` stands for on `platform`
        (`NAME::os/arch` first, then `NAME`, as BuildKit looks), or None."""
        if name.lower() in ("scratch", "context"):
            return None
        key = context_key(name)
        for wanted in (f"{key}::{format_platform(platform)}", key):
            for given, ref in self.images.items():
                if context_key(given) == wanted:
                    return ref
            for given, exclude in self.dirs.items():
                if context_key(given) == wanted:
                    return LocalSource(local_name(given), build_platform, exclude)
        return None


def named_root(source: LocalSource, platform: Platform) -> Copy:
    """`FROM NAME` of a directory: its files as the stage's first layer (as `FROM scratch`
    and `COPY . /`, with no image config, which BuildKit gives such a stage too)."""
    name = source.name.removeprefix(LOCAL_PREFIX)
    return Copy(
        None,
        source,
        (".",),
        "/",
        platform,
        description=f"[context {name}] load from client",
    )


def is_named_root(op: Op) -> bool:
    """Whether `op` is a `named_root` (a source step, not one of the stage's own)."""
    return (
        isinstance(op, Copy)
        and op.dest_base is None
        and isinstance(op.source, LocalSource)
        and op.source.name.startswith(LOCAL_PREFIX)
        and op.location is None
    )


__all__ = [
    "LOCAL_PREFIX",
    "NamedContexts",
    "context_key",
    "is_named_root",
    "local_name",
    "named_root",
]
