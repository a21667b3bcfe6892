"""`--build-context NAME=oci-layout://PATH[:TAG][@DIGEST]`: the value split as buildx splits
it (a digest after the last `@`, a tag after the last `:`, else the tag `latest`), the image
found in the layout (by digest; else the index.json entry whose ref.name is the tag; else
the layout's only entry, as buildx resolves it), and its blobs copied into a content store,
each verified against its digest. Every error is a UsageError naming the flag and value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import ImageError, InvalidReferenceError, PolybuildError, UsageError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layout import LayoutDir, copy_blob
from polybuild.image.reference import parse
from polybuild.image.select import find_child
from polybuild.image.walk import reachable

PREFIX = "oci-layout://"
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
_DIGEST = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")


@dataclass(frozen=True, slots=True)
class LayoutImage:
    """The image an `oci-layout://` context names: where it is, and the reference the
    frontend knows it by (BuildKit's `NAME@DIGEST`)."""

    path: Path
    descriptor: Descriptor
    ref: str


def split_value(value: str) -> tuple[str, str, str]:
    """`oci-layout://PATH[:TAG][@DIGEST]` -> (PATH, TAG, DIGEST), buildx's ocilayout.Parse."""
    path = value.removeprefix(PREFIX)
    tag = digest = ""
    at = path.rfind("@")
    if at >= 0 and _DIGEST.match(path[at + 1 :]):
        path, digest = path[:at], path[at + 1 :]
    colon = path.rfind(":")
    if colon >= 0 and _TAG.match(path[colon + 1 :]):
        path, tag = path[:colon], path[colon + 1 :]
    if not tag and not digest:
        tag = "latest"
    return path, tag, digest


def find_layout_image(name: str, value: str) -> LayoutImage:
    """The image `NAME=value` names in its layout (read now: the index.json only)."""
    flag = f"--build-context {name}={value}"
    path, tag, given = split_value(value)
    layout = LayoutDir(Path(path).absolute())
    try:
        layout.check()
        entries = layout.index().value.manifests
        if given:
            descriptor = _by_digest(layout, entries, Digest.parse(given))
            if descriptor is None:
                raise UsageError(f"{flag}: the layout {path} has no image {given}")
        else:
            tagged = [e for e in entries if e.annotations.get(mt.ANNOTATION_REF_NAME) == tag]
            descriptor = tagged[0] if tagged else (entries[0] if len(entries) == 1 else None)
            if descriptor is None:
                raise UsageError(
                    f"{flag}: the layout {path} has no image tagged {tag!r}",
                    hint="name the image by its digest: oci-layout://PATH@sha256:...",
                )
        ref = parse(name, default_tag=False).with_digest(descriptor.digest)
    except UsageError:
        raise
    except InvalidReferenceError as exc:
        raise UsageError(f"{flag}: {name} is not an image name: {exc.message}") from None
    except PolybuildError as exc:
        raise UsageError(f"{flag}: {exc.message}", hint=exc.hint) from None
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read the layout {path}: {exc.strerror}") from None
    return LayoutImage(layout.path, descriptor, str(ref))


def _by_digest(
    layout: LayoutDir, entries: tuple[Descriptor, ...], digest: Digest
) -> Descriptor | None:
    """An index.json entry with `digest`, or a manifest inside one of them."""
    for entry in entries:
        if entry.digest == digest:
            return entry
    for entry in entries:
        if mt.is_index(entry.media_type):
            found = find_child(layout, entry, digest)
            if found is not None:
                return found
    return None


def import_layout_image(name: str, value: str, image: LayoutImage, content: ContentStore) -> None:
    """The image's blobs (every platform's that the layout holds) copied into `content`,
    each verified: a blob whose bytes are not its digest is refused."""
    layout = LayoutDir(image.path)
    try:
        found = reachable(layout, [image.descriptor])
        if image.descriptor.digest not in found.present:
            raise ImageError(f"the layout has no blob {image.descriptor.digest}")
        for descriptor in found.present.values():
            if not content.exists(descriptor.digest):
                copy_blob(layout, content, descriptor)
    except PolybuildError as exc:
        raise UsageError(f"--build-context {name}={value}: {exc.message}", hint=exc.hint) from exc
    finally:
        layout.close()


__all__ = ["PREFIX", "LayoutImage", "find_layout_image", "import_layout_image", "split_value"]
