"""A cache in an OCI image layout directory (`type=local,dest=DIR` / `src=DIR`), as BuildKit
writes it: the layer blobs, the cache config and the cache manifest under `blobs/`, and an
`index.json` entry naming the manifest by tag (`tag=`, default `latest`), or read by
`digest=`.

Writing is atomic for a reader: every blob is written to a temporary file and renamed into
place once complete and verified, and `index.json` is replaced last, in one rename; a writer
killed at any moment leaves the previous cache readable and whole.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from polybuild.cache.config import MAX_CONFIG, Record, decode, encode
from polybuild.cache.manifest import CacheArtifact, layers_of, make_manifest, read_manifest
from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.layout import LayoutDir, copy_blob
from polybuild.image.walk import MAX_MANIFEST_SIZE

DEFAULT_TAG = "latest"


class LocalCache:
    """One cache directory; `tag` names the cache in index.json, `digest` pins one to read."""

    def __init__(self, path: Path, *, tag: str = DEFAULT_TAG, digest: str = "") -> None:
        self.path = Path(path).absolute()
        self.tag = tag or DEFAULT_TAG
        self.digest = digest

    @property
    def name(self) -> str:
        return str(self.path)

    def _top(self, layout: LayoutDir) -> Descriptor:
        entries = layout.index().value.manifests
        if self.digest:
            wanted = Digest.parse(self.digest)
            for entry in entries:
                if entry.digest == wanted:
                    return entry
            raise ImageError(f"{self.path}: no cache {self.digest} in its index.json")
        for entry in entries:
            if entry.annotations.get(mt.ANNOTATION_REF_NAME) == self.tag:
                return entry
        raise ImageError(f"{self.path}: no cache tagged {self.tag!r} in its index.json")

    def artifact(self) -> CacheArtifact:
        layout = LayoutDir(self.path)
        layout.check()
        top = self._top(layout)
        if top.size > MAX_MANIFEST_SIZE:
            raise ImageError(f"{self.path}: the cache manifest is too large")
        try:
            return read_manifest(layout.get(top.digest), top.media_type)
        except ImageError as exc:
            raise ImageError(f"{self.path}: {exc.message}") from None

    async def read(self) -> dict[str, Record]:
        artifact = self.artifact()
        if artifact.config.size > MAX_CONFIG:
            raise ImageError(f"{self.path}: the cache config is too large")
        return decode(LayoutDir(self.path).get(artifact.config.digest), artifact.known())

    async def fetch(self, layer: Layer, content: ContentStore) -> None:
        """One layer blob into `content`, verified as it is copied."""
        copy_blob(LayoutDir(self.path), content, layer.descriptor)

    async def write(
        self,
        records: Mapping[str, Record],
        content: ContentStore,
        *,
        image_manifest: bool = True,
    ) -> Descriptor:
        """Write `records` as this cache (blobs first, index.json last)."""
        layout = LayoutDir.create(self.path)
        try:
            config = encode(records.values())
            config_descriptor, document = make_manifest(
                config, layers_of(records.values()), image_manifest=image_manifest
            )
            content.put(config, config_descriptor.digest)
            for layer in layers_of(records.values()):
                if not layout.exists(layer.blob):
                    copy_blob(content, layout, layer.descriptor)
            copy_blob(content, layout, config_descriptor)
            if not layout.exists(document.digest):
                with layout.writer(document.digest, len(document.raw)) as writer:
                    writer.write(document.raw)
            top = Descriptor(
                document.media_type,
                document.digest,
                len(document.raw),
                annotations={mt.ANNOTATION_REF_NAME: self.tag},
            )
            kept = [
                e
                for e in layout.index().value.manifests
                if e.annotations.get(mt.ANNOTATION_REF_NAME) != self.tag
            ]
            layout.write_index([*kept, top])
            return top
        finally:
            layout.close()


__all__ = ["DEFAULT_TAG", "LocalCache"]
