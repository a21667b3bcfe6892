"""The generated exit programs are real executables for their architecture."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from polybuild.binfmt.elf import EXIT_CODE, TARGETS, exit_program
from polybuild.binfmt.handlers import EMULATOR_BY_ARCH, EMULATORS
from polybuild.platforms import host_platform
from tests.conftest import require_tool


@pytest.mark.qemu
@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_program_runs_under_its_qemu_and_exits_42(arch: str, tmp_path: Path) -> None:
    path = tmp_path / arch
    path.write_bytes(exit_program(arch))
    path.chmod(0o755)
    if arch == host_platform().architecture:
        argv = [str(path)]
    else:
        argv = [require_tool(f"qemu-{EMULATOR_BY_ARCH[arch].qemu}-static"), str(path)]
    proc = subprocess.run(argv, capture_output=True, timeout=30, check=False)
    assert proc.returncode == EXIT_CODE, proc.stderr


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_program_is_selected_by_exactly_its_own_handler(arch: str) -> None:
    program = exit_program(arch)
    assert [e.arch for e in EMULATORS if e.matches(program)] == [arch]


@pytest.mark.qemu
def test_a_wrong_architecture_does_not_exit_42(tmp_path: Path) -> None:
    # s390x code run by the aarch64 emulator must fail: the probe proves the architecture.
    path = tmp_path / "s390x"
    path.write_bytes(exit_program("s390x"))
    path.chmod(0o755)
    qemu = require_tool("qemu-aarch64-static")
    proc = subprocess.run([qemu, str(path)], capture_output=True, timeout=30, check=False)
    assert proc.returncode != EXIT_CODE
