"""`--build-context NAME=VALUE`: a stage or image named in `FROM` / `COPY --from` replaced by
a local directory, an image (`docker-image://REF`), an image of a local OCI layout
(`oci-layout://PATH[:TAG][@DIGEST]`, found in the layout now) or a remote source (a git or
HTTP(S) URL), parsed as buildx parses them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from polybuild.errors import UsageError

if TYPE_CHECKING:
    from polybuild.imagebuild.layout_context import LayoutImage

FLAG = "--build-context"
_REMOTE = re.compile(r"^(https?://|git://|git@|ssh://)")
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_./:@-]*$")


@dataclass(frozen=True, slots=True)
class NamedContext:
    """One `--build-context`: `value` as given, `directory` when it is a local directory (or
    a git or HTTP(S) source fetched into one), `layout` the image of an OCI layout."""

    name: str
    value: str
    directory: Path | None = None
    # What the directory's files exclude: None reads its own .dockerignore (BuildKit's rule
    # for a local named context); () for a fetched git or HTTP(S) source, which has none.
    exclude: tuple[str, ...] | None = None
    layout: LayoutImage | None = None

    @property
    def kind(self) -> str:
        if self.directory is not None:
            return "local"
        if self.value.startswith("docker-image://"):
            return "docker-image"
        if self.value.startswith("oci-layout://"):
            return "oci-layout"
        return "remote"


def parse_build_context(item: str) -> NamedContext:
    name, sep, value = item.partition("=")
    name = name.strip()
    if not sep or not name or not value:
        raise UsageError(f"{FLAG} {item!r}: expected NAME=VALUE")
    if not _NAME.match(name):
        raise UsageError(f"{FLAG} {item!r}: {name!r} is not a stage or image name")
    if value.startswith("oci-layout://"):
        from polybuild.imagebuild.layout_context import find_layout_image

        return NamedContext(name, value, layout=find_layout_image(name, value))
    if value.startswith(("docker-image://", "target:")) or _REMOTE.match(value):
        if value.startswith("target:"):
            raise UsageError(f"{FLAG} {item!r}: target: contexts come from bake, not build")
        return NamedContext(name, value)
    directory = Path(value).absolute()
    if not directory.is_dir():
        raise UsageError(f"{FLAG} {item!r}: {value} is not a directory")
    return NamedContext(name, value, directory)


def parse_build_contexts(items: Iterable[str]) -> tuple[NamedContext, ...]:
    found: dict[str, NamedContext] = {}
    for item in items:
        context = parse_build_context(item)
        if context.name in found:
            raise UsageError(f"{FLAG} {item!r}: {context.name} is given twice")
        found[context.name] = context
    return tuple(found.values())


__all__ = ["NamedContext", "parse_build_context", "parse_build_contexts"]
