"""Probing the real kernel: what runs natively, through QEMU, or fails and why."""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild.binfmt.handlers import EMULATOR_BY_ARCH, BinfmtMisc, Handler
from polybuild.binfmt.probe import ProbeStatus, probe_arch, runnable_platforms
from polybuild.platforms import parse
from tests.conftest import require, require_platforms, require_root, require_tool

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

MUST_RUN = (
    "linux/amd64",
    "linux/386",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/ppc64le",
    "linux/s390x",
)


def test_runnable_platforms_after_setup() -> None:
    require_root()
    require_platforms(*MUST_RUN)
    runnable = runnable_platforms(refresh=True)
    assert runnable[0].architecture == "amd64"  # the native platform first
    for spec in MUST_RUN:
        assert parse(spec) in runnable


@pytest.fixture
def mips64_handler_swapped() -> Iterator[BinfmtMisc]:
    """Temporarily take the kernel's mips64 handler away; put it back afterwards."""
    require_root()
    binfmt = BinfmtMisc()
    require(binfmt.is_mounted(), "binfmt_misc is not mounted")
    emulator = EMULATOR_BY_ARCH["mips64"]
    saved: list[Handler] = [h for h in binfmt.handlers() if h.matches(emulator.magic)]
    for handler in saved:
        binfmt.unregister(handler.name)
    try:
        yield binfmt
    finally:
        for handler in binfmt.handlers():
            if handler.matches(emulator.magic):
                binfmt.unregister(handler.name)
        for handler in saved:
            restored = dataclasses.replace(emulator, qemu=handler.name.removeprefix("qemu-"))
            binfmt.register(restored, handler.interpreter, handler.flags)


def test_no_handler_and_handler_without_f_flag_are_told_apart(
    mips64_handler_swapped: BinfmtMisc,
) -> None:
    binfmt = mips64_handler_swapped
    qemu = require_tool("qemu-mips64-static")
    with tempfile.TemporaryDirectory() as tmp:
        result = probe_arch("mips64", Path(tmp), binfmt.handlers())
    assert result.status is ProbeStatus.NO_HANDLER

    without_f = dataclasses.replace(EMULATOR_BY_ARCH["mips64"], qemu="mips64-polybuild-test")
    binfmt.register(without_f, qemu, "")
    with tempfile.TemporaryDirectory() as tmp:
        result = probe_arch("mips64", Path(tmp), binfmt.handlers())
    assert result.status is ProbeStatus.NO_FIX_BINARY
    assert result.status.value == "registered without the F flag"
    assert result.handler is not None and result.handler.name == "qemu-mips64-polybuild-test"

    binfmt.unregister("qemu-mips64-polybuild-test")
    binfmt.register(without_f, qemu, "F")
    with tempfile.TemporaryDirectory() as tmp:
        result = probe_arch("mips64", Path(tmp), binfmt.handlers())
    assert result.status is ProbeStatus.EMULATED
