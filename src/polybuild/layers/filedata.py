"""A regular file's data from a tar entry onto disk: sparse maps checked, zeros left as holes.

Only data segments are written, with pwrite at their offsets, and the size is set by
ftruncate, so the holes of sparse files (old GNU type 'S' and PAX sparse formats 0.0, 0.1 and
1.0) stay holes; aligned 64 KiB blocks of zeros in any file's data become holes too. Used by
the layer unpacker and by ADD's archive extraction (fileops/archive.py).
"""

from __future__ import annotations

import os
import tarfile
from typing import cast

from polybuild.errors import UnpackError
from polybuild.tarstream import reader as tarreader

__all__ = ["data_segments", "write_entry_data", "write_keeping_holes"]

_CHUNK = 1 << 20
# Aligned runs of zeros at least this long are left as holes.
_HOLE_BLOCK = 64 << 10
_ZERO_BLOCK = bytes(_HOLE_BLOCK)


def data_segments(member: tarfile.TarInfo, stored: int) -> list[tuple[int, int]]:
    """Where the stored data of regular file `member` goes: sorted (offset, length) pairs."""
    if member.size < 0:
        raise UnpackError(member.name, f"negative size {member.size}")
    # typeshed says bytes; tarfile sets a list of (offset, length) for sparse members.
    sparse = cast(list[tuple[int, int]] | None, member.sparse)
    if sparse is None:
        return [(0, member.size)] if member.size else []
    segments: list[tuple[int, int]] = []
    end = total = 0
    for offset, length in sparse:
        if length == 0:
            continue  # GNU tar fills unused slots of its header with empty entries
        if length < 0 or offset < end or offset + length > member.size:
            raise UnpackError(
                member.name,
                f"invalid sparse map: ({offset}, {length}) after {end} in a file of "
                f"{member.size} bytes",
            )
        segments.append((offset, length))
        end = offset + length
        total += length
    if total > stored:
        raise UnpackError(member.name, f"sparse map needs {total} bytes, entry has {stored}")
    return segments


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    while data:
        written = os.pwrite(fd, data, offset)
        data, offset = data[written:], offset + written


def write_keeping_holes(fd: int, data: bytes, offset: int) -> None:
    """Write `data` at `offset`, but leave aligned _HOLE_BLOCK runs of zeros unwritten."""
    view = memoryview(data)
    pending = pos = 0  # data[pending:pos] is still to be written
    while pos < len(data):
        end = min(len(data), pos + _HOLE_BLOCK - (offset + pos) % _HOLE_BLOCK)
        if (
            end - pos == _HOLE_BLOCK
            and data[pos] == 0
            and data[end - 1] == 0
            and data[pos:end] == _ZERO_BLOCK
        ):
            if pending < pos:
                _pwrite_all(fd, view[pending:pos], offset + pending)
            pending = end
        pos = end
    if pending < len(data):
        _pwrite_all(fd, view[pending:], offset + pending)


def write_entry_data(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    segments: list[tuple[int, int]],
    fd: int,
    *,
    source: str = "layer",
) -> None:
    """Write regular file `member`'s `segments` (from data_segments) into `fd`, set its size.

    A stream that ends inside the entry's data is an UnpackError naming the entry and the
    `source` ("layer", "archive").
    """
    data = tarreader.tar_data(tar)
    data.seek(member.offset_data)
    # Stored data is the segments back to back; between them the file has holes.
    for start, length in segments:
        pos, end = start, start + length
        while pos < end:
            chunk = data.read(min(_CHUNK, end - pos))
            if not chunk:
                raise UnpackError(member.name, f"the {source} ends inside this entry's data")
            write_keeping_holes(fd, chunk, pos)
            pos += len(chunk)
    os.ftruncate(fd, member.size)
