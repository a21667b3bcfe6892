"""`polybuild binfmt` as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import require_platforms, require_root

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

MUST_RUN = (
    "linux/amd64",
    "linux/386",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/ppc64le",
    "linux/s390x",
)


def polybuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "polybuild", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.qemu
def test_status_json_lists_supported_platforms_and_emulators() -> None:
    require_root()
    require_platforms(*MUST_RUN)
    proc = polybuild("binfmt")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert set(status) == {"supported", "emulators"}
    for spec in MUST_RUN:
        assert spec in status["supported"]
    assert "qemu-aarch64" in status["emulators"] or any("aarch64" in e for e in status["emulators"])


@pytest.mark.qemu
def test_install_again_leaves_handlers_alone() -> None:
    require_root()
    require_platforms("linux/arm64")
    proc = polybuild("binfmt", "--install", "arm64")
    assert proc.returncode == 0, proc.stderr
    assert "already registered" in proc.stderr
    assert "linux/arm64" in json.loads(proc.stdout)["supported"]


def test_unknown_arch_is_one_clear_line_and_exit_2() -> None:
    proc = polybuild("binfmt", "--install", "vax")
    assert proc.returncode == 2
    assert "unknown emulator 'vax'" in proc.stderr
    assert "hint:" in proc.stderr and "Traceback" not in proc.stderr


def test_not_root_gets_a_clear_error(tmp_path: object) -> None:
    require_root()
    # Import everything first, then drop to nobody: the interpreter may live under /root.
    code = (
        "import os, json, polybuild.cli, polybuild.cli.binfmt, polybuild.binfmt;"
        "os.setgroups([]); os.setgid(65534); os.setuid(65534);"
        "polybuild.cli.main(['binfmt', '--install', 'arm64'])"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 4, proc.stderr
    assert "needs root" in proc.stderr and "Traceback" not in proc.stderr
