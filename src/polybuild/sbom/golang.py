"""Go executables: the build info the Go linker embeds (debug/buildinfo's format), read with
bounded windows: the main module, every dependency (`dep` lines, `=>` replacements) and the
standard library of the Go version that built it.

The blob starts with the 14-byte magic "\\xff Go buildinf:", then the pointer size and a flag
byte, padded to 32 bytes. With flag bit 2 (Go 1.18 on) two strings follow inline, each a uvarint
length and its bytes: the Go version and the module information. Before that, two pointers at
offset 16 give the virtual addresses of Go string headers (data pointer, length), in the byte
order flag bit 1 says. The module text is wrapped in 16 bytes of sentinel on each side."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

from packageurl import PackageURL

from polybuild.sbom.elf import PF_W, Elf, ElfFormatError, open_elf
from polybuild.sbom.package import Package, ScanLimits

BUILDINFO_MAGIC = b"\xff Go buildinf:"
_HEADER = 32
_INLINE, _BIG_ENDIAN = 2, 1
_SENTINEL = 16


@dataclass(frozen=True, slots=True)
class BuildInfo:
    go_version: str
    modules: str


def might_be_executable(mode: int, size: int) -> bool:
    return bool(mode & 0o111) and size >= 64


def _uvarint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    for index in range(offset, min(len(data), offset + 10)):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    raise ElfFormatError("a bad varint in the build info")


def _find_blob(elf: Elf, limits: ScanLimits) -> int | None:
    """The file offset of the build info: the .go.buildinfo section, else the first magic at
    a 16-byte boundary in a writable segment's first `elf_scan_bytes`."""
    section = elf.sections.get(".go.buildinfo")
    if section is not None and elf.read(section[0], len(BUILDINFO_MAGIC)) == BUILDINFO_MAGIC:
        return section[0]
    for segment in elf.segments:
        if not segment.flags & PF_W:
            continue
        end = segment.offset + min(segment.filesz, limits.elf_scan_bytes)
        position = segment.offset
        while position < end:
            window = elf.read(position, min(limits.elf_window, end - position) + _HEADER)
            found = window.find(BUILDINFO_MAGIC)
            while found >= 0:
                if (position + found) % 16 == 0:  # p_offset = p_vaddr modulo the page size
                    return position + found
                found = window.find(BUILDINFO_MAGIC, found + 1)
            if len(window) <= _HEADER:
                break
            position += len(window) - _HEADER
    return None


def _pointed_string(elf: Elf, address: int, pointer: int, order: str, cap: int) -> str:
    word = "Q" if pointer == 8 else "I"
    header_offset = elf.file_offset(address)
    if header_offset is None:
        raise ElfFormatError("a build info pointer outside the loaded segments")
    header = elf.read(header_offset, 2 * pointer)
    if len(header) < 2 * pointer:
        raise ElfFormatError("a truncated string header")
    data_address, length = struct.unpack_from(f"{order}{word}{word}", header)
    data_offset = elf.file_offset(data_address)
    if length > cap or data_offset is None:
        raise ElfFormatError("a build info string too long or outside the file")
    return elf.read(data_offset, length).decode("utf-8", "replace")


def read_buildinfo(fd: int, size: int, limits: ScanLimits) -> BuildInfo | None:
    """The build info of the ELF file open as `fd`, or None when it has none."""
    try:
        elf = open_elf(fd, size)
        start = _find_blob(elf, limits)
        if start is None:
            return None
        head = elf.read(start, _HEADER)
        if len(head) < _HEADER:
            return None
        pointer, flags = head[14], head[15]
        if flags & _INLINE:
            blob = elf.read(start + _HEADER, limits.go_buildinfo_bytes)
            length, offset = _uvarint(blob, 0)
            version = blob[offset : offset + length].decode("utf-8", "replace")
            length, offset = _uvarint(blob, offset + length)
            if offset + length > len(blob):
                return None
            modules = blob[offset : offset + length].decode("utf-8", "replace")
        elif pointer in (4, 8):
            order = ">" if flags & _BIG_ENDIAN else "<"
            word = "Q" if pointer == 8 else "I"
            version_at, modules_at = struct.unpack_from(f"{order}{word}{word}", head, 16)
            cap = limits.go_buildinfo_bytes
            version = _pointed_string(elf, version_at, pointer, order, cap)
            modules = _pointed_string(elf, modules_at, pointer, order, cap)
        else:
            return None
    except (ElfFormatError, struct.error, OSError):
        return None
    if len(modules) >= 2 * _SENTINEL + 1 and modules[-_SENTINEL - 1] == "\n":
        modules = modules[_SENTINEL:-_SENTINEL]
    return BuildInfo(version, modules) if version.startswith("go") else None


def _golang_purl(path: str, version: str) -> str:
    namespace, _, name = path.rpartition("/")
    return PackageURL(
        type="golang", namespace=namespace or None, name=name, version=version or None
    ).to_string()


def packages(info: BuildInfo, evidence: str) -> list[Package]:
    """The main module, each dependency (as replaced) and the standard library, as syft names
    them: stdlib's version is the Go version ("go1.22.1"), its purl pkg:golang/stdlib@1.22.1."""
    modules: list[tuple[str, str]] = []
    for line in info.modules.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3 and fields[1]:
            modules.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3 and modules and fields[1]:
            if fields[1].startswith((".", "/")):
                # a directory replacement: the module keeps its path, its code has no version
                modules[-1] = (modules[-1][0], fields[2] or "(devel)")
            else:
                modules[-1] = (fields[1], fields[2])
    found = [
        Package(
            kind="go-module",
            name=path,
            version=version,
            purl=_golang_purl(path, version),
            evidence=(evidence,),
        )
        for path, version in modules
    ]
    go_version = info.go_version.split()[0] if info.go_version.split() else info.go_version
    found.append(
        Package(
            kind="go-module",
            name="stdlib",
            version=go_version,
            purl=PackageURL(
                type="golang", name="stdlib", version=go_version.removeprefix("go")
            ).to_string(),
            license="BSD-3-Clause",
            evidence=(evidence,),
        )
    )
    return found


def is_elf(fd: int) -> bool:
    try:
        return os.pread(fd, 4, 0) == b"\x7fELF"
    except OSError:
        return False
