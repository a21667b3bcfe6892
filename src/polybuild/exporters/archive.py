"""The `oci` and `docker` outputs: the image as an OCI layout tarball or a docker-archive.

The docker-archive is written the way Docker 25+ `docker save` and BuildKit's docker
exporter (containerd's archive writer) write it: an OCI layout (`oci-layout`, `index.json`,
`blobs/sha256/...`) plus `manifest.json`, whose entries point at the config and layer blobs
by path. Classic `docker load` reads `manifest.json` (one image per entry); loaders that
understand OCI layouts (Docker with the containerd image store, skopeo, polybuild load)
read `index.json`.

For several platforms BuildKit's docker exporter refuses ("docker exporter does not
currently support exporting manifest lists"). We write every platform into `index.json`
and list ONE of them in `manifest.json`, this machine's platform when built (else the
first), and say so in a warning, so `docker load` never silently loads a foreign platform
without the user being told which.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from polybuild.errors import ImageError
from polybuild.exporters.assemble import AssembledImage
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.layout import INDEX_FILE, LAYOUT_FILE, LAYOUT_FILE_BYTES, name_annotations
from polybuild.image.layout import layout_index as encode_layout_index
from polybuild.image.layout_tar import write_tar
from polybuild.image.manifest import Index, Stored
from polybuild.image.platform_image import PlatformImage
from polybuild.image.reference import Reference
from polybuild.image.walk import reachable, require_complete
from polybuild.platforms import format_platform, host_platform, only

MANIFEST_FILE = "manifest.json"


def layout_entries(image: AssembledImage, names: Sequence[Reference]) -> list[Descriptor]:
    """index.json entries for the image: one per name (annotated), or one unnamed."""
    if not names:
        return [image.target]
    entries = []
    for ref in names:
        annotations = dict(image.target.annotations)
        annotations.update(name_annotations(ref))
        entries.append(image.target.with_annotations(annotations))
    return entries


def write_oci_archive(
    out: BinaryIO, image: AssembledImage, names: Sequence[Reference]
) -> Stored[Index]:
    """Write the image, every platform, as an OCI layout tar to `out`; returns index.json."""
    return write_tar(out, image.content, layout_entries(image, names))


@dataclass(frozen=True, slots=True)
class DockerArchive:
    """What a docker-archive holds: index.json, and the platform manifest.json lists."""

    index: Stored[Index]
    loaded: PlatformImage
    warning: str | None


def docker_platform(image: AssembledImage) -> PlatformImage:
    """The platform manifest.json lists: this machine's (or one it runs), else the first."""
    candidates = [p.platform for p in image.platforms]
    best = only(host_platform()).best(candidates)
    for platform_image in image.platforms:
        if platform_image.platform == best:
            return platform_image
    return image.platforms[0]


def _docker_warning(image: AssembledImage, chosen: PlatformImage) -> str | None:
    if len(image.platforms) < 2:
        return None
    others = [format_platform(p.platform) for p in image.platforms if p is not chosen]
    return (
        f"docker output: manifest.json lists only {format_platform(chosen.platform)}, the one "
        f"a classic `docker load` loads; {', '.join(others)} are in the archive's index.json "
        "only (read by Docker with the containerd image store, skopeo and polybuild load). "
        "Use type=oci for a multi-platform archive, or --platform for one platform."
    )


def manifest_json(chosen: PlatformImage, names: Sequence[Reference]) -> bytes:
    """manifest.json with one entry for `chosen` (Docker's field order and compact JSON)."""

    def path(descriptor: Descriptor) -> str:
        return f"blobs/{descriptor.digest.algorithm}/{descriptor.digest.hex}"

    manifest = chosen.manifest.value
    entry: dict[str, object] = {
        "Config": path(manifest.config),
        "RepoTags": [ref.familiar() for ref in names] or None,
        "Layers": [path(layer) for layer in manifest.layers],
    }
    foreign = {
        str(layer.digest): {
            "mediaType": layer.media_type,
            "size": layer.size,
            "urls": list(layer.urls),
        }
        for layer in manifest.layers
        if layer.urls
    }
    if foreign:
        entry["LayerSources"] = foreign
    return json.dumps([entry], separators=(",", ":")).encode() + b"\n"


def _info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    # Fixed metadata: the same image always gives the same archive bytes.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info


def write_docker_archive(
    out: BinaryIO, image: AssembledImage, names: Sequence[Reference]
) -> DockerArchive:
    """Write a docker-archive (and OCI layout) tar of the image to `out`."""
    entries = layout_entries(image, names)
    found = reachable(image.content, entries)
    require_complete(found, "image")
    index = encode_layout_index(entries)
    chosen = docker_platform(image)
    files = {
        LAYOUT_FILE: LAYOUT_FILE_BYTES,
        INDEX_FILE: index.raw,
        MANIFEST_FILE: manifest_json(chosen, names),
    }
    content: ContentStore = image.content
    try:
        with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for name in (LAYOUT_FILE, INDEX_FILE):
                tar.addfile(_info(name, size=len(files[name])), io.BytesIO(files[name]))
            tar.addfile(_info("blobs/", directory=True))
            for algorithm in sorted({d.algorithm for d in found.present}):
                tar.addfile(_info(f"blobs/{algorithm}/", directory=True))
            for digest in sorted(found.present):
                with content.open(digest) as reader:
                    info = _info(f"blobs/{digest.algorithm}/{digest.hex}", size=reader.size)
                    tar.addfile(info, reader)
            data = files[MANIFEST_FILE]
            tar.addfile(_info(MANIFEST_FILE, size=len(data)), io.BytesIO(data))
    except OSError as exc:
        raise ImageError(f"cannot write the docker archive: {exc}") from exc
    return DockerArchive(index, chosen, _docker_warning(image, chosen))


__all__ = [
    "MANIFEST_FILE",
    "DockerArchive",
    "docker_platform",
    "layout_entries",
    "manifest_json",
    "write_docker_archive",
    "write_oci_archive",
]
