"""Tiny static ELF programs, one per architecture, that only call exit(42).

They are assembled here from a few hand-encoded instructions so that polybuild can ask the
kernel "can you run this architecture?" the way BuildKit does, by executing one, without
shipping binaries. Each program is a single PT_LOAD segment: ELF header, one program header,
then the code.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

EXIT_CODE = 42  # distinctive, so a successful probe proves the program really ran
_BASE = 0x400000

EM_386, EM_MIPS, EM_PPC64, EM_S390, EM_ARM = 3, 8, 21, 22, 40
EM_X86_64, EM_AARCH64, EM_RISCV, EM_LOONGARCH = 62, 183, 243, 258


@dataclass(frozen=True, slots=True)
class ElfTarget:
    """How to assemble the exit program for one architecture (GOARCH-style name)."""

    arch: str
    bits: int  # 32 or 64
    little_endian: bool
    machine: int
    flags: int
    code: bytes


def _words(words: tuple[int, ...], little_endian: bool) -> bytes:
    fmt = ("<" if little_endian else ">") + "I" * len(words)
    return struct.pack(fmt, *words)


def _mips64(little_endian: bool) -> bytes:
    # n64 ABI: exit is syscall 5058; addiu $v0,$zero,5058; addiu $a0,$zero,42; syscall
    return _words((0x240213C2, 0x24040000 | EXIT_CODE, 0x0000000C), little_endian)


TARGETS: dict[str, ElfTarget] = {
    t.arch: t
    for t in (
        # mov eax,60 ; mov edi,42 ; syscall
        ElfTarget(
            "amd64",
            64,
            True,
            EM_X86_64,
            0,
            b"\xb8\x3c\x00\x00\x00\xbf" + struct.pack("<I", EXIT_CODE) + b"\x0f\x05",
        ),
        # mov eax,1 ; mov ebx,42 ; int 0x80
        ElfTarget(
            "386",
            32,
            True,
            EM_386,
            0,
            b"\xb8\x01\x00\x00\x00\xbb" + struct.pack("<I", EXIT_CODE) + b"\xcd\x80",
        ),
        # mov x8,#93 ; mov x0,#42 ; svc #0
        ElfTarget(
            "arm64",
            64,
            True,
            EM_AARCH64,
            0,
            _words((0xD2800BA8, 0xD2800000 | EXIT_CODE << 5, 0xD4000001), True),
        ),
        # EABI5: mov r7,#1 ; mov r0,#42 ; svc #0
        ElfTarget(
            "arm",
            32,
            True,
            EM_ARM,
            0x05000000,
            _words((0xE3A07001, 0xE3A00000 | EXIT_CODE, 0xEF000000), True),
        ),
        # ELFv2: li r0,1 ; li r3,42 ; sc
        ElfTarget(
            "ppc64le",
            64,
            True,
            EM_PPC64,
            2,
            _words((0x38000001, 0x38600000 | EXIT_CODE, 0x44000002), True),
        ),
        # lghi %r2,42 ; svc 1
        ElfTarget(
            "s390x", 64, False, EM_S390, 0, b"\xa7\x29" + struct.pack(">H", EXIT_CODE) + b"\x0a\x01"
        ),
        # li a7,93 ; li a0,42 ; ecall
        ElfTarget(
            "riscv64",
            64,
            True,
            EM_RISCV,
            0,
            _words((0x05D00893, EXIT_CODE << 20 | 10 << 7 | 0x13, 0x00000073), True),
        ),
        ElfTarget("mips64le", 64, True, EM_MIPS, 0x80000007, _mips64(True)),
        ElfTarget("mips64", 64, False, EM_MIPS, 0x80000007, _mips64(False)),
        # ori $a7,$zero,93 ; ori $a0,$zero,42 ; syscall 0
        ElfTarget(
            "loong64",
            64,
            True,
            EM_LOONGARCH,
            0x43,
            _words((0x0381740B, 0x03800004 | EXIT_CODE << 10, 0x002B0000), True),
        ),
    )
}


def exit_program(arch: str) -> bytes:
    """A complete static ELF executable for `arch` whose only effect is exit(42)."""
    return program(TARGETS[arch])


def program(target: ElfTarget) -> bytes:
    """A complete static ELF executable that runs `target.code` (tests give other code)."""
    e = "<" if target.little_endian else ">"
    wide = target.bits == 64
    ehsize, phsize = (64, 56) if wide else (52, 32)
    addr = "Q" if wide else "I"  # entry point and offsets are as wide as the class
    entry = _BASE + ehsize + phsize
    size = ehsize + phsize + len(target.code)
    ident = b"\x7fELF" + bytes([2 if wide else 1, 1 if target.little_endian else 2, 1]) + bytes(9)
    layout = f"HHI{addr}{addr}{addr}IHHHHHH"
    fields = (2, target.machine, 1, entry, ehsize, 0, target.flags, ehsize, phsize, 1, 0, 0, 0)
    header = ident + struct.pack(e + layout, *fields)
    if wide:  # the 64-bit program header moves p_flags up, next to p_type
        phdr = struct.pack(e + "IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    else:
        phdr = struct.pack(e + "IIIIIIII", 1, 0, _BASE, _BASE, size, size, 5, 0x1000)
    return header + phdr + target.code
