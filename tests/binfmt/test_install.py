"""Installing and removing handlers, against a scratch binfmt_misc-like directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.binfmt import installer as install_module
from polybuild.binfmt.handlers import BinfmtMisc
from polybuild.errors import EmulationError, PrivilegeError, UsageError
from tests.conftest import require_root


def scratch_binfmt(tmp_path: Path) -> BinfmtMisc:
    (tmp_path / "register").write_text("")
    (tmp_path / "status").write_text("enabled\n")
    return BinfmtMisc(tmp_path)


@pytest.mark.root
def test_install_writes_a_register_line_with_the_f_flag(tmp_path: Path) -> None:
    require_root()
    binfmt = scratch_binfmt(tmp_path)
    outcomes = install_module.install(["riscv64"], binfmt)
    assert [o.result.split(" ")[0] for o in outcomes] == ["installed"]
    line = (tmp_path / "register").read_text()
    fields = line.split(":")
    assert fields[1] == "qemu-riscv64" and fields[2] == "M"
    assert fields[4].startswith("\\x7f\\x45\\x4c\\x46\\x02\\x01\\x01")
    assert fields[6].endswith(("riscv64-binfmt-P", "qemu-riscv64-static"))
    assert "F" in fields[7]


@pytest.mark.root
def test_native_architecture_is_not_installed(tmp_path: Path) -> None:
    require_root()
    binfmt = scratch_binfmt(tmp_path)
    outcomes = install_module.install(["amd64,386"], binfmt)
    assert all(o.result.startswith("native") for o in outcomes)
    assert (tmp_path / "register").read_text() == ""


def test_unknown_name_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        install_module.install(["arm64,vax"], scratch_binfmt(tmp_path))
    assert "vax" in str(info.value) and "arm64" in (info.value.hint or "")


@pytest.mark.root
def test_missing_qemu_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    monkeypatch.setattr(install_module, "find_interpreter", lambda emulator: None)
    with pytest.raises(EmulationError) as info:
        install_module.install(["s390x"], scratch_binfmt(tmp_path))
    assert "s390x" in str(info.value)
    assert "apt-get install qemu-user-static" in (info.value.hint or "")
    assert (tmp_path / "register").read_text() == ""


def test_not_root_is_a_privilege_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("polybuild.binfmt.installer.os.geteuid", lambda: 1000)
    with pytest.raises(PrivilegeError) as info:
        install_module.install(["arm64"], scratch_binfmt(tmp_path))
    assert "needs root" in str(info.value)
    with pytest.raises(PrivilegeError):
        install_module.uninstall(["all"], scratch_binfmt(tmp_path))


@pytest.mark.root
def test_uninstall_globs_write_minus_one(tmp_path: Path) -> None:
    require_root()
    binfmt = scratch_binfmt(tmp_path)
    for name in ("qemu-aarch64", "qemu-arm", "other"):
        (tmp_path / name).write_text("enabled\ninterpreter /x\nflags: F\noffset 0\nmagic 7f\n")
    outcomes = install_module.uninstall(["qemu-*"], binfmt)
    assert sorted(o.name for o in outcomes) == ["qemu-aarch64", "qemu-arm"]
    assert (tmp_path / "qemu-arm").read_text() == "-1"
    assert (tmp_path / "other").read_text().startswith("enabled")
    assert install_module.uninstall(["qemu-s390x"], binfmt)[0].result == "not registered"
