"""RPM header blobs (as rpmdb.sqlite's Packages.blob holds them), parsed with a bounds check
on every index entry: il and dl (big-endian int32), il 16-byte entries (tag, type, offset,
count), then dl bytes of data."""

from __future__ import annotations

import struct
from dataclasses import dataclass

NAME, VERSION, RELEASE, EPOCH, LICENSE = 1000, 1001, 1002, 1003, 1014
ARCH, SOURCERPM = 1022, 1044
DIRINDEXES, BASENAMES, DIRNAMES = 1116, 1117, 1118
_INT32, _STRING, _STRING_ARRAY, _I18NSTRING = 4, 6, 8, 9
_WANTED = {NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM, DIRINDEXES, BASENAMES, DIRNAMES}
_MAX_ENTRIES = 1 << 16


class HeaderFormatError(ValueError):
    """The blob is not a well-formed RPM header (a scan skips the package and warns)."""


@dataclass(frozen=True, slots=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    license: str
    source_rpm: str
    files: tuple[str, ...]


def _strings(data: bytes, offset: int, count: int) -> list[str]:
    found: list[str] = []
    for _ in range(count):
        end = data.find(b"\0", offset)
        if end < 0:
            raise HeaderFormatError("a string runs past the end of the data")
        found.append(data[offset:end].decode("utf-8", "replace"))
        offset = end + 1
    return found


def parse_header(blob: bytes) -> RpmHeader:
    if len(blob) < 8:
        raise HeaderFormatError("shorter than its lengths")
    entries, data_length = struct.unpack_from(">II", blob, 0)
    if entries > _MAX_ENTRIES or 8 + entries * 16 + data_length > len(blob):
        raise HeaderFormatError("its lengths point past its end")
    data_start = 8 + entries * 16
    data = blob[data_start : data_start + data_length]
    strings: dict[int, list[str]] = {}
    integers: dict[int, list[int]] = {}
    for index in range(entries):
        tag, kind, offset, count = struct.unpack_from(">IIII", blob, 8 + index * 16)
        if tag not in _WANTED:
            continue
        if offset >= data_length or count > data_length:
            raise HeaderFormatError(f"tag {tag} points outside the data")
        if kind == _INT32:
            if offset + 4 * count > data_length:
                raise HeaderFormatError(f"tag {tag} runs past the data")
            integers[tag] = list(struct.unpack_from(f">{count}I", data, offset))
        elif kind in (_STRING, _I18NSTRING, _STRING_ARRAY):
            strings[tag] = _strings(data, offset, 1 if kind == _STRING else count)

    def text(tag: int) -> str:
        values = strings.get(tag)
        return values[0] if values else ""

    names = strings.get(BASENAMES, [])
    directories = strings.get(DIRNAMES, [])
    indexes = integers.get(DIRINDEXES, [])
    if len(indexes) != len(names) or any(i >= len(directories) for i in indexes):
        raise HeaderFormatError("its file lists do not match")
    epoch = integers.get(EPOCH)
    return RpmHeader(
        name=text(NAME),
        version=text(VERSION),
        release=text(RELEASE),
        epoch=epoch[0] if epoch else None,
        arch=text(ARCH),
        license=text(LICENSE),
        source_rpm=text(SOURCERPM),
        files=tuple(directories[i] + name for i, name in zip(indexes, names, strict=True)),
    )
