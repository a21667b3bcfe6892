"""The busybox fixtures really run: `uname -m` in a chroot, natively and under QEMU."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import require_platforms, require_root, require_tool

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

CASES = [
    ("amd64", "linux/amd64", "x86_64"),
    pytest.param("arm64", "linux/arm64", "aarch64", marks=pytest.mark.qemu),
    pytest.param("armhf", "linux/arm/v7", "armv7l", marks=pytest.mark.qemu),
    pytest.param("s390x", "linux/s390x", "s390x", marks=pytest.mark.qemu),
]


@pytest.mark.parametrize(("debian_arch", "platform", "machine"), CASES)
def test_uname_in_chroot(
    busybox_rootfs: Callable[[str], Path], debian_arch: str, platform: str, machine: str
) -> None:
    require_root()
    require_platforms(platform)
    root = busybox_rootfs(debian_arch)

    proc = subprocess.run(
        [require_tool("chroot"), str(root), "/bin/sh", "-c", "uname -m"],
        capture_output=True,
        text=True,
        timeout=120,
        env={},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == machine
