"""`--metadata-file` and `--iidfile` contents, as buildx writes them, and the no-output notice."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from polybuild.image.content import write_file_atomic
from polybuild.image.reference import Reference

if TYPE_CHECKING:
    from polybuild.exporters.assemble import AssembledImage

NO_OUTPUT_WARNING = (
    "No output specified. The build result will only remain in the build cache. "
    "To load the image into the local image store use --load, to push it to a registry "
    "use --push, or write it somewhere with -o/--output."
)


def metadata(image: AssembledImage, names: Sequence[Reference] = ()) -> dict[str, object]:
    """The exporter response: image digest and descriptor, config digest (one platform only,
    as buildx), and the names it got."""
    descriptor: dict[str, object] = {
        "mediaType": image.target.media_type,
        "digest": str(image.target.digest),
        "size": image.target.size,
    }
    if image.target.annotations:
        descriptor["annotations"] = dict(image.target.annotations)
    result: dict[str, object] = {
        "containerimage.descriptor": descriptor,
        "containerimage.digest": str(image.digest),
    }
    if image.config_digest is not None:
        result["containerimage.config.digest"] = str(image.config_digest)
    if names:
        result["image.name"] = ",".join(str(name) for name in names)
    return dict(sorted(result.items()))


def image_id(image: AssembledImage) -> str:
    """What `--iidfile` holds: the config digest for one platform, else the index digest."""
    return str(image.config_digest or image.digest)


def write_iidfile(path: Path, image: AssembledImage) -> None:
    """Write the image ID to `path` atomically (no trailing newline, as buildx)."""
    write_file_atomic(Path(path), image_id(image).encode(), 0o644)


def write_metadata_file(path: Path, data: Mapping[str, object]) -> None:
    """Write the metadata as indented JSON to `path` atomically."""
    write_file_atomic(Path(path), json.dumps(dict(data), indent=2, sort_keys=True).encode(), 0o644)


__all__ = [
    "NO_OUTPUT_WARNING",
    "image_id",
    "metadata",
    "write_iidfile",
    "write_metadata_file",
]
