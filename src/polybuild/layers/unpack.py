"""Safe layer unpacking: apply a (compressed) layer tar onto a root directory, with whiteouts.

Limits, so that a small hostile layer cannot make unpacking use much memory, disk or time:

- Memory stays bounded whatever the layer: data moves in 1 MiB chunks; the headers of one
  entry (PAX records, GNU long names, sparse maps) may read at most 1 MiB, and global PAX
  headers together as much (`tarreader.MAX_HEADER_BYTES`, Go's archive/tar bound); more
  is an ImageError. Members are forgotten once applied. Decompression holds one window:
  32 KiB for gzip, at most 128 MiB for zstd (zstandard's default; frames asking for more
  are refused).
- Disk use follows the data, not the sizes in headers: sparse files (old GNU type 'S' and
  PAX sparse formats 0.0, 0.1 and 1.0) get only their data segments written, with pwrite
  at their offsets, and their size set by ftruncate, so holes stay holes. Aligned 64 KiB
  blocks of zeros in any file's data become holes too, so a gzip/zstd layer holding a
  huge file of zeros costs no disk. Sparse maps must be sorted, must not overlap and must
  lie within the file's size; the size itself is bounded only by the file system (one it
  cannot hold, such as 2**62 bytes on ext4, is an UnpackError).
- Time follows the decompressed stream: each byte is read once (it is hashed for the
  diff-id anyway); data of entries we do not apply is read through, not skipped block by
  block, so a forged size on a stream that ends early fails at once; PAX records are
  parsed in linear time (Python's own regexes before 3.11.10 are quadratic).
- There is no limit on the decompressed size itself, nor on the number of entries: a
  layer's digest is verified before it is unpacked, so its size is the image author's
  choice, as with docker and containerd. Only non-zero data costs disk, but compressible
  non-zero data (repeated bytes) still expands by the compressor's ratio (about 1000x for
  gzip, far more for zstd), and every entry costs an inode.

Malformed tar structure is an ImageError (an UnpackError when it names an entry); a
corrupt or truncated header after the first entry is an error, not the end of the layer.

This module drives the stream (decompression, header budget, diff-id); apply.py applies each
entry, with policy.py (untrusted layers), whiteout.py (the modes) and filedata.py (holes).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import DigestMismatchError, ImageError, UnpackError
from polybuild.layers.apply import BAD_VALUE_ERRORS, EntryApplier
from polybuild.layers.compress import Compression, open_decompressed
from polybuild.layers.policy import SkippedEntry
from polybuild.layers.whiteout import UnpackMode
from polybuild.rootfs import RootDir, RootfsPathError
from polybuild.tarstream import reader as tarreader

__all__ = ["SkippedEntry", "UnpackError", "UnpackMode", "UnpackResult", "unpack_layer"]

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class UnpackResult:
    """What unpacking did: the tar's diff-id, its compression, entries read and skipped."""

    diff_id: str
    compression: Compression
    entries: int
    skipped: tuple[SkippedEntry, ...]


def _reason(exc: Exception) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def unpack_layer(
    stream: BinaryIO,
    root: Path,
    *,
    mode: UnpackMode = UnpackMode.MERGED,
    trusted: bool = False,
    expected_diff_id: str | None = None,
    opaque_xattr: str = "trusted.overlay.opaque",
) -> UnpackResult:
    """Apply the layer in `stream` (gzip, zstd or plain tar) onto directory `root`.

    Every name resolves inside `root` as if chrooted (`..`, absolute names and symlinks
    cannot lead out); a hard link must name a file already inside `root`. `trusted` is for
    base images and layers we built: device nodes, set-id bits and privileged xattrs
    (security.capability, trusted.*) are applied only then; otherwise they are skipped,
    recorded in the result and logged as warnings. Ownership is applied when running as
    root. With `expected_diff_id`, a mismatch raises DigestMismatchError after unpacking,
    so the caller must then discard `root`.
    """
    tar_stream, compression = open_decompressed(stream)
    budget = tarreader.HeaderBudget(tar_stream)
    rootdir = RootDir(str(root))
    applier = EntryApplier(rootdir, mode, trusted, opaque_xattr)
    entries = 0
    try:
        with budget.headers():  # opening reads the first entry's headers
            tar = tarreader.LayerTarFile.open(fileobj=budget, mode="r|", errors="surrogateescape")
        with tar:
            while True:
                with budget.headers():
                    member = tar.next()
                if member is None:
                    break
                entries += 1
                try:
                    applier.apply(tar, member)
                except UnpackError:
                    raise
                except (RootfsPathError, OSError, *BAD_VALUE_ERRORS) as exc:
                    raise UnpackError(member.name, _reason(exc)) from exc
                tarreader.read_through(tar)
            try:
                applier.finish()
            except (RootfsPathError, OSError) as exc:
                raise ImageError(f"cannot set directory metadata: {_reason(exc)}") from exc
        # The diff-id covers the whole tar, including the padding after the end marker.
        while tar_stream.read(_CHUNK):
            pass
    except tarfile.TarError as exc:
        raise ImageError(f"layer is not a valid tar archive: {exc}") from exc
    finally:
        rootdir.close()
    diff_id = tar_stream.diff_id()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise DigestMismatchError(f"layer diff-id is {diff_id}, expected {expected_diff_id}")
    return UnpackResult(diff_id, compression, entries, tuple(applier.skipped))
