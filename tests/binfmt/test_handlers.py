"""binfmt_misc handler parsing and the emulator table."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.binfmt.handlers import EMULATORS, parse_handler, resolve_arch_name
from tests.conftest import require

DEBIAN_BINFMT_D = Path("/usr/lib/binfmt.d")


def _unescape(text: str) -> bytes:
    return text.encode().decode("unicode_escape").encode("latin-1")


@pytest.mark.parametrize(
    "emulator", [e for e in EMULATORS if e.arch not in ("amd64", "386")], ids=lambda e: e.name
)
def test_magic_and_mask_agree_with_debian_qemu_user_static(emulator: object) -> None:
    from polybuild.binfmt.handlers import Emulator

    assert isinstance(emulator, Emulator)
    conf = DEBIAN_BINFMT_D / f"{emulator.name}.conf"
    require(conf.exists(), f"{conf} (from Debian's qemu-user-static)")
    fields = conf.read_text().strip().split(":")
    # :name:type:offset:magic:mask:interpreter:flags
    assert fields[1] == emulator.name
    assert _unescape(fields[4]) == emulator.magic
    assert _unescape(fields[5]) == emulator.mask


def test_parse_handler_text() -> None:
    handler = parse_handler(
        "qemu-aarch64",
        "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: OCF\noffset 0\n"
        "magic 7f454c460201010000000000000000000200b700\n"
        "mask ffffffffffffff00fffffffffffffffffeffffff\n",
    )
    assert handler.enabled and handler.fix_binary
    assert handler.interpreter == "/usr/bin/qemu-aarch64-static"
    aarch64 = next(e for e in EMULATORS if e.arch == "arm64")
    assert handler.magic == aarch64.magic and handler.mask == aarch64.mask
    disabled = parse_handler("x", "disabled\ninterpreter /x\nflags: \noffset 0\nmagic 7f\n")
    assert not disabled.enabled and not disabled.fix_binary
    assert not disabled.matches(b"\x7f")


@pytest.mark.parametrize(
    ("name", "arch"),
    [
        ("arm64", "arm64"),
        ("aarch64", "arm64"),
        ("qemu-aarch64", "arm64"),
        ("armhf", "arm"),
        ("arm", "arm"),
        ("386", "386"),
        ("i386", "386"),
        ("ppc64le", "ppc64le"),
        ("mips64el", "mips64le"),
        ("loongarch64", "loong64"),
        ("riscv64", "riscv64"),
    ],
)
def test_resolve_arch_names(name: str, arch: str) -> None:
    emulator = resolve_arch_name(name)
    assert emulator is not None and emulator.arch == arch


def test_unknown_arch_name() -> None:
    assert resolve_arch_name("vax") is None
