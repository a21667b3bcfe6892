"""The `local` and `tar` outputs: the final filesystem of each platform, layers merged.

With one platform the filesystem goes straight into the destination; with several, each
goes into a subdirectory named as BuildKit names it (`linux_amd64`, `linux_arm_v7`).

For `local`, layers are unpacked as untrusted (polybuild.layers.unpack): device nodes, set-id
bits and privileged xattrs are left out, because the files land on the host, outside any
container, where a set-uid binary or a device node would be a privilege the image should not
grant; what was left out is reported as a warning. The `tar` output is a stream, not files
on the host: it keeps everything (a root filesystem tarball needs its set-uid `su`), going
through a private scratch directory. Ownership is kept when running as root and becomes the
caller's otherwise.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from polybuild.errors import UsageError
from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.destination import open_file_dest, staging_dir
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.platform_image import PlatformImage
from polybuild.layers import SkippedEntry, UnpackMode, unpack_layer, write_directory_tar
from polybuild.platforms import Platform, format_platform
from polybuild.scratch import scratch_dir

Warn = Callable[[str], None]


def platform_dir_name(platform: Platform) -> str:
    """`linux/arm/v7` -> `linux_arm_v7`: BuildKit's per-platform directory name."""
    return format_platform(platform).replace("/", "_")


def unpack_image(
    content: ContentStore, image: PlatformImage, root: Path, *, trusted: bool = False
) -> list[SkippedEntry]:
    """Apply the image's layers, bottom first, onto `root` (merged: whiteouts delete)."""
    skipped: list[SkippedEntry] = []
    manifest = image.manifest.value
    diff_ids = image.config.value.diff_ids
    for layer, diff_id in zip(manifest.layers, diff_ids, strict=True):
        if mt.is_nondistributable(layer.media_type) and not content.exists(layer.digest):
            raise UsageError(
                f"{format_platform(image.platform)}: foreign layer {layer.digest} is not "
                "available locally and cannot be unpacked"
            )
        with content.open(layer.digest) as blob:
            result = unpack_layer(
                cast(BinaryIO, blob),
                root,
                mode=UnpackMode.MERGED,
                trusted=trusted,
                expected_diff_id=str(diff_id),
            )
        skipped.extend(result.skipped)
    return skipped


def _split(image: AssembledImage, platform_split: bool | None) -> bool:
    if platform_split is None:
        return len(image.platforms) > 1
    if not platform_split and len(image.platforms) > 1:
        raise UsageError(
            "--output: platform-split=false with several platforms is not supported",
            hint="drop platform-split=false, or build one --platform",
        )
    return platform_split


def _fill(
    image: AssembledImage, root: Path, split: bool, warn: Warn, *, trusted: bool = False
) -> None:
    for platform_image in image.platforms:
        target = root / platform_dir_name(platform_image.platform) if split else root
        target.mkdir(mode=0o755, exist_ok=True)
        skipped = unpack_image(image.content, platform_image, target, trusted=trusted)
        mine = [a for a in image.attestation_files if a.platform == platform_image.platform]
        if mine:
            from polybuild.exporters.attestation_files import write_attestation_files

            write_attestation_files(target, mine)
        if skipped:
            listed = ", ".join(f"{s.name} ({s.reason})" for s in skipped[:3])
            more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
            warn(
                f"{format_platform(platform_image.platform)}: {len(skipped)} entries were "
                f"not exported: {listed}{more}"
            )


def export_local(
    image: AssembledImage, dest: str, *, platform_split: bool | None = None, warn: Warn
) -> Path:
    """Write each platform's filesystem into directory `dest`; nothing is left half-written."""
    split = _split(image, platform_split)
    with staging_dir(dest) as stage:
        _fill(image, stage, split, warn)
    return Path(dest)


def export_tar(
    image: AssembledImage,
    dest: str,
    stdout: BinaryIO,
    *,
    platform_split: bool | None = None,
    source_date_epoch: int | None = None,
    warn: Warn,
) -> None:
    """Write each platform's filesystem as one tar to `dest` ("-" is stdout)."""
    split = _split(image, platform_split)
    with contextlib.ExitStack() as stack:
        scratch = stack.enter_context(scratch_dir("tar"))
        root = scratch / "rootfs"
        root.mkdir(mode=0o700)  # private: trusted content (set-id files, devices) lands here
        _fill(image, root, split, warn, trusted=True)
        out = stack.enter_context(open_file_dest(dest, stdout))
        write_directory_tar(root, out, source_date_epoch=source_date_epoch)


__all__ = ["export_local", "export_tar", "platform_dir_name", "unpack_image"]
