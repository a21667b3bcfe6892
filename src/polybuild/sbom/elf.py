"""Just enough of ELF to find data in a hostile executable with bounded reads (os.pread):
the byte order and word size, sections by name and loadable segments."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

MAGIC = b"\x7fELF"
PT_LOAD = 1
PF_W = 2
_MAX_TABLE = 4 << 20  # bytes of section or program headers read
_MAX_NAMES = 1 << 20  # bytes of the section name table read


class ElfFormatError(ValueError):
    """Not an ELF file, or one whose tables point outside it."""


@dataclass(frozen=True, slots=True)
class Segment:
    offset: int
    vaddr: int
    filesz: int
    flags: int


@dataclass(frozen=True, slots=True)
class Elf:
    """An open ELF file's layout; `read` never reads more than it is asked, nor past the end."""

    fd: int
    size: int
    wide: bool  # 64-bit
    order: str  # "<" or ">"
    sections: dict[str, tuple[int, int]]  # name -> (file offset, size); not SHT_NOBITS
    segments: tuple[Segment, ...]

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0 or offset >= self.size:
            return b""
        return os.pread(self.fd, min(length, self.size - offset), offset)

    def file_offset(self, vaddr: int) -> int | None:
        """Where in the file a virtual address's bytes are, if some loaded segment holds them."""
        for segment in self.segments:
            if segment.vaddr <= vaddr < segment.vaddr + segment.filesz:
                return segment.offset + (vaddr - segment.vaddr)
        return None


def _table(fd: int, size: int, offset: int, entry: int, count: int) -> bytes:
    if count == 0:
        return b""
    if entry <= 0 or entry * count > _MAX_TABLE or offset + entry * count > size:
        raise ElfFormatError("a header table lies outside the file")
    return os.pread(fd, entry * count, offset)


def open_elf(fd: int, size: int) -> Elf:
    ident = os.pread(fd, 64, 0)
    if (
        len(ident) < 52
        or not ident.startswith(MAGIC)
        or ident[4] not in (1, 2)
        or ident[5] not in (1, 2)
    ):
        raise ElfFormatError("not an ELF file")
    wide, order = ident[4] == 2, "<" if ident[5] == 1 else ">"
    if wide:
        if len(ident) < 64:
            raise ElfFormatError("truncated ELF header")
        phoff, shoff = struct.unpack_from(order + "QQ", ident, 32)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(
            order + "HHHHH", ident, 54
        )
    else:
        phoff, shoff = struct.unpack_from(order + "II", ident, 28)
        phentsize, phnum, shentsize, shnum, shstrndx = struct.unpack_from(
            order + "HHHHH", ident, 42
        )
    segments = []
    programs = _table(fd, size, phoff, phentsize, phnum)
    for index in range(phnum):
        base = index * phentsize
        if wide:
            kind, flags, offset, vaddr, _, filesz = struct.unpack_from(
                order + "IIQQQQ", programs, base
            )
        else:
            kind, offset, vaddr, _, filesz, _, flags = struct.unpack_from(
                order + "IIIIIII", programs, base
            )
        if kind == PT_LOAD:
            segments.append(Segment(offset, vaddr, filesz, flags))
    sections: dict[str, tuple[int, int]] = {}
    try:
        headers = _table(fd, size, shoff, shentsize, shnum)
    except ElfFormatError:
        headers = b""  # sections are optional for loading; segments still serve
    if headers and shstrndx < shnum:
        rows = []
        for index in range(shnum):
            base = index * shentsize
            if wide:
                name, kind, _, _, offset, length = struct.unpack_from(
                    order + "IIQQQQ", headers, base
                )
            else:
                name, kind, _, _, offset, length = struct.unpack_from(
                    order + "IIIIII", headers, base
                )
            rows.append((name, kind, offset, length))
        _, _, names_offset, names_length = rows[shstrndx]
        names = (
            os.pread(fd, min(names_length, _MAX_NAMES), names_offset)
            if names_offset < size
            else b""
        )
        for name, kind, offset, length in rows:
            end = names.find(b"\0", name)
            if kind != 8 and 0 <= name < len(names) and end > 0:  # 8: SHT_NOBITS
                sections.setdefault(names[name:end].decode("latin-1"), (offset, length))
    return Elf(fd, size, wide, order, sections, tuple(segments))
