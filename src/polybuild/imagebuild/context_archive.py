"""A context that arrives as bytes (stdin, an HTTP download): copied to a private file within
a size bound, recognised as buildx recognises an archive, and extracted as hostile input.

buildx and BuildKit (build/utils.go, dockerui/context.go isArchive) look at the first bytes:
bzip2, gzip or xz magic, or a tar header that reads, make an archive; anything else is a
bare Dockerfile. Extraction is ADD's (fileops/archive.py: the hardened tar reader, names
cleaned so none leaves the directory, links resolved inside it, device nodes refused), into
a directory of the caller's, owned by whoever runs polybuild; a first pass over the headers
bounds the number of entries and the bytes they declare before anything is written.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import ContextError, FileOpError, ImageError
from polybuild.fileops.archive import extract_archive
from polybuild.fileops.owner import ResolvedOwner
from polybuild.fileops.tree import DestRoot
from polybuild.tarstream import reader as tarreader
from polybuild.tarstream.decompress import decompressed

__all__ = ["CHUNK", "HEAD_BYTES", "Limits", "copy_bounded", "extract_context", "is_archive_head"]

HEAD_BYTES = 1024  # buildx peeks at two tar blocks
_MAGIC = (b"BZh", b"\x1f\x8b\x08", b"\xfd7zXZ\x00")  # bzip2, gzip, xz
CHUNK = 1 << 20  # what a reader of the source is asked for at a time


@dataclass(frozen=True, slots=True)
class Limits:
    """How much a context archive may be: its bytes as sent, its entries, and the bytes its
    entries declare once decompressed (a small gzip can expand a thousandfold)."""

    archive_bytes: int = 8 << 30
    entries: int = 1_000_000
    extracted_bytes: int = 32 << 30


def is_archive_head(head: bytes) -> bool:
    """buildx's isArchive: compressed by bzip2, gzip or xz, or a tar header that reads."""
    if any(head.startswith(magic) for magic in _MAGIC):
        return True
    try:
        entries = tarreader.read_entries(io.BytesIO(head))
        try:
            return next(entries, None) is not None
        finally:
            entries.close()
    except (tarfile.TarError, ImageError, OSError, ValueError):
        return False


def copy_bounded(chunks: Iterable[bytes], dest: Path, limit: int, what: str) -> bytes:
    """`chunks` into the new file `dest` (0600), at most `limit` bytes; returns the first
    HEAD_BYTES. ContextError naming `what` when there is more."""
    head = b""
    total = 0
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as out:
        for chunk in chunks:
            total += len(chunk)
            if total > limit:
                raise ContextError(f"{what}: more than {limit} bytes, the limit for a context")
            if len(head) < HEAD_BYTES:
                head += chunk[: HEAD_BYTES - len(head)]
            out.write(chunk)
    return head


def _check_bounds(path: Path, limits: Limits, what: str) -> None:
    """Count the entries and the bytes they declare; stop at the first bound passed."""
    entries = 0
    declared = 0
    with path.open("rb") as raw:
        reading = tarreader.read_entries(decompressed(raw))
        try:
            for _tar, member in reading:
                entries += 1
                declared += max(member.size, 0)
                if entries > limits.entries:
                    raise ContextError(f"{what}: more than {limits.entries} entries in the archive")
                if declared > limits.extracted_bytes:
                    raise ContextError(
                        f"{what}: the archive holds more than {limits.extracted_bytes} bytes"
                    )
        finally:
            reading.close()


def extract_context(path: Path, dest: Path, what: str, limits: Limits | None = None) -> None:
    """Extract the archive at `path` into the empty directory `dest` as hostile input;
    ContextError naming `what` (and the entry to blame) when it cannot be."""
    limits = limits or Limits()
    owner = ResolvedOwner(os.getuid(), os.getgid())
    try:
        _check_bounds(path, limits, what)
        with DestRoot(dest) as root:
            extract_archive(str(path), root, [], owner)
    except FileOpError as exc:
        raise ContextError(f"{what}: {exc.reason}") from None
    except (tarfile.TarError, ImageError) as exc:
        raise ContextError(f"{what}: not a valid tar archive: {exc}") from None
    except OSError as exc:
        raise ContextError(f"{what}: extracting: {exc.strerror or exc}") from None
