"""The busybox fixtures: fetched with apt on a machine without ../shared, never leaving foreign
architectures enabled; verified against the shared checksums; made into root filesystems."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from polybuild.testing.busybox import (
    DEBIAN_ARCHES,
    deb_name,
    fetch_debs,
    make_rootfs,
    make_rootfs_tar,
    shared_debs_dir,
)
from tests.conftest import require, require_root, require_tool


def _sums(directory: Path) -> dict[str, str]:
    lines = (directory / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


@pytest.mark.root
def test_fetch_with_apt_matches_the_shared_copies(tmp_path: Path) -> None:
    require_root()
    require_tool("apt-get")
    require(shared_debs_dir().is_dir(), f"{shared_debs_dir()} (the verified copies)")
    before = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=True
    ).stdout
    fetched = fetch_debs(["s390x", "armel"], tmp_path)
    assert [p.name for p in fetched] == [deb_name("s390x"), deb_name("armel")]
    shared = _sums(shared_debs_dir())
    ours = _sums(tmp_path)
    for path in fetched:
        assert ours[path.name] == shared[path.name]
    after = subprocess.run(
        ["dpkg", "--print-foreign-architectures"], capture_output=True, text=True, check=True
    ).stdout
    assert after == before  # no foreign architecture left enabled on the host


def test_rootfs_layout(tmp_path: Path) -> None:
    root = make_rootfs("arm64", tmp_path / "rootfs")
    assert (root / "bin" / "busybox").stat().st_size > 500_000
    assert (root / "bin" / "sh").readlink() == Path("busybox")
    assert oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    assert "root:x:0:0" in (root / "etc" / "passwd").read_text()
    with open(root / "bin" / "busybox", "rb") as f:
        header = f.read(20)
    assert header[:4] == b"\x7fELF" and header[18] == 0xB7  # EM_AARCH64
    tarball = make_rootfs_tar("armhf", tmp_path / "armhf.tar")
    import tarfile

    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "bin/busybox" in names and "bin/sh" in names and "etc/group" in names
    assert set(DEBIAN_ARCHES) == {"amd64", "arm64", "armhf", "armel", "i386", "ppc64el", "s390x"}
