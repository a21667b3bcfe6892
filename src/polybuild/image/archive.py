"""Moving images between the local image store and OCI layouts (tarballs or directories)."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import ImageError, InvalidReferenceError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.layout import entry_name, export_dir, import_dir, name_annotations
from polybuild.image.layout_tar import read_tar, write_tar
from polybuild.image.manifest import Index, Stored
from polybuild.image.reference import Reference, parse
from polybuild.image.store import ImageStore

_NAME_KEYS = (mt.ANNOTATION_IMAGE_NAME, mt.ANNOTATION_REF_NAME)


@dataclass(frozen=True, slots=True)
class Loaded:
    """An image a load brought in: its name (None when the layout gave none) and target."""

    name: Reference | None
    target: Descriptor


def _strip_names(entry: Descriptor) -> Descriptor:
    kept = {k: v for k, v in entry.annotations.items() if k not in _NAME_KEYS}
    return entry.with_annotations(kept)


def _register(store: ImageStore, index: Stored[Index]) -> list[Loaded]:
    loaded: list[Loaded] = []
    for entry in index.value.manifests:
        if not (mt.is_index(entry.media_type) or mt.is_manifest(entry.media_type)):
            continue  # artifacts and other blobs have no place in an image store
        name = entry_name(entry)
        target = _strip_names(entry)
        if name is not None:
            store.tag(name, target)
        else:
            store.add_unnamed(target)
        loaded.append(Loaded(name, target))
    if not loaded:
        raise ImageError("the OCI layout holds no images (its index.json lists none)")
    return loaded


def load_archive(store: ImageStore, fileobj: BinaryIO) -> list[Loaded]:
    """Load every image of an OCI layout tar (gzip allowed) into the store."""
    with store.lease():
        return _register(store, read_tar(fileobj, store.content))


def load_directory(store: ImageStore, path: Path) -> list[Loaded]:
    """Load every image of an OCI layout directory into the store."""
    with store.lease():
        return _register(store, import_dir(path, store.content))


def _entries(store: ImageStore, names: Sequence[str]) -> list[Descriptor]:
    """index.json entries for `names`: named ones annotated, IDs without names."""
    entries: list[Descriptor] = []
    for text in names:
        record = store.resolve(text)
        try:
            ref: Reference | None = parse(text)
        except InvalidReferenceError:
            ref = None
        if ref is None or record.name != ref:
            ref = None
        annotations = dict(_strip_names(record.target).annotations)
        if ref is not None:
            annotations.update(name_annotations(ref))
        entry = record.target.with_annotations(annotations)
        if entry not in entries:
            entries.append(entry)
    return entries


def save_archive(store: ImageStore, names: Sequence[str], fileobj: BinaryIO) -> Stored[Index]:
    """Write the images `names` (all their platforms) as one OCI layout tar to `fileobj`."""
    return write_tar(fileobj, store.content, _entries(store, names))


def save_archive_file(store: ImageStore, names: Sequence[str], path: Path) -> Stored[Index]:
    """Like save_archive, into `path`, which appears complete or not at all."""
    entries = _entries(store, names)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with temp.open("wb") as out:
            index = write_tar(out, store.content, entries)
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
    except OSError as exc:
        raise ImageError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()
    return index


def save_directory(store: ImageStore, names: Sequence[str], path: Path) -> Stored[Index]:
    """Write the images `names` into the OCI layout directory `path` (created if needed)."""
    return export_dir(path, store.content, _entries(store, names))
