"""The scanner on a hostile root file system: links out of the root and loops, FIFOs and
devices named like metadata, huge and bomb-like archives, deep nesting, undecodable bytes."""

from __future__ import annotations

import os
import stat
import subprocess
import time
import tracemalloc
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from polybuild.sbom import ScanLimits, scan_rootfs, spdx_document
from polybuild.sbom.walk import open_beneath
from tests.conftest import require_root
from tests.sbom.roots import DPKG_STATUS, jar_bytes, write
from tests.sbom.spdx_check import validation_errors

SECRET_STATUS = "Package: secret\nStatus: install ok installed\nVersion: 6.6.6\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the root holding metadata a link may point at."""
    target = tmp_path / "outside"
    write(target / "status", SECRET_STATUS)
    write(target / "lib/dpkg/status", SECRET_STATUS)
    write(target / "METADATA", "Name: secret\nVersion: 6.6.6\n")
    write(target / "package.json", '{"name": "secret", "version": "6.6.6"}')
    return target


def names(root: Path, limits: ScanLimits | None = None) -> set[str]:
    return {p.name for p in scan_rootfs(root, limits=limits).packages}


def test_links_out_of_the_root_are_never_followed(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib/dpkg/status.d").mkdir(parents=True)
    (root / "var/lib/dpkg/status").symlink_to(outside / "status")  # absolute, out of the root
    (root / "var/lib/dpkg/status.d/x").symlink_to("../../../../../outside/status")  # relative
    (root / "var/lib/dpkg/status.d/shadow").symlink_to("/etc/shadow")
    (root / "usr/lib/python3/dist-packages/a-1.dist-info").mkdir(parents=True)
    (root / "usr/lib/python3/dist-packages/a-1.dist-info/METADATA").symlink_to(outside / "METADATA")
    (root / "usr/lib/python3/dist-packages/b-1.dist-info").symlink_to(outside)  # a directory link
    (root / "node_modules/secret").mkdir(parents=True)
    (root / "node_modules/secret/package.json").symlink_to(outside / "package.json")
    (root / "lib").symlink_to(outside / "lib")  # the merged-/usr link, pointing out
    (root / "etc").mkdir()
    (root / "etc/os-release").symlink_to("/etc/os-release")  # the host's must not be read
    inventory = scan_rootfs(root)
    assert inventory.packages == ()
    assert inventory.distro is None
    assert inventory.files_seen == 0  # links are not files


def test_a_linked_directory_on_the_way_to_a_looked_up_file(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    (root / "var/lib").mkdir(parents=True)
    (root / "var/lib/dpkg").symlink_to(outside)
    assert open_beneath(os.open(root, os.O_RDONLY), "/var/lib/dpkg/status") is None
    (root / "etc").symlink_to(outside)
    write(outside / "os-release", "ID=host\n")
    assert scan_rootfs(root).distro is None


def test_dpkg_list_files_behind_links_are_not_read(tmp_path: Path, outside: Path) -> None:
    root = tmp_path / "root"
    write(root / "var/lib/dpkg/status", DPKG_STATUS)
    write(outside / "bash.list", "/etc/secret\n")
    (root / "var/lib/dpkg/info").mkdir()
    (root / "var/lib/dpkg/info/bash:amd64.list").symlink_to(outside / "bash.list")
    bash = next(p for p in scan_rootfs(root).packages if p.name == "bash")
    assert bash.files == () and bash.evidence == ("/var/lib/dpkg/status",)


def test_symlink_loops_are_harmless(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a/b").mkdir(parents=True)
    (root / "a/b/up").symlink_to("../..")
    (root / "a/b/self").symlink_to("self")
    (root / "a/b/abs").symlink_to("/")
    (root / "a/one").symlink_to("two")
    (root / "a/two").symlink_to("one")
    write(root / "a/b/node_modules/real/package.json", '{"name": "real", "version": "1.0.0"}')
    assert names(root) == {"real"}


def test_fifos_named_like_metadata_do_not_block(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for path in (
        "var/lib/dpkg/status",
        "lib/apk/db/installed",
        "var/lib/rpm/rpmdb.sqlite",
        "usr/lib/python3/site-packages/x-1.dist-info/METADATA",
        "node_modules/x/package.json",
        "app.jar",
        "etc/os-release",
    ):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(root / path)
    os.mkfifo(root / "run-me", 0o755)  # executable FIFO: a Go binary candidate
    started = time.monotonic()
    inventory = scan_rootfs(root)
    assert time.monotonic() - started < 5
    assert inventory.packages == () and inventory.files_seen == 0


@pytest.mark.root
def test_devices_named_like_metadata_are_never_opened(tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    (root / "var/lib/dpkg/status.d").mkdir(parents=True)
    # /dev/zero: read, it never ends; opened with O_NONBLOCK it still would
    os.mknod(root / "var/lib/dpkg/status", stat.S_IFCHR | 0o644, os.makedev(1, 5))
    os.mknod(root / "var/lib/dpkg/status.d/zero", stat.S_IFCHR | 0o755, os.makedev(1, 5))
    os.mknod(root / "app.jar", stat.S_IFCHR | 0o755, os.makedev(1, 5))
    started = time.monotonic()
    inventory = scan_rootfs(root)
    assert time.monotonic() - started < 5
    assert inventory.packages == () and inventory.files_seen == 0


def test_a_2_gib_sparse_jar(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    with (root / "huge.jar").open("wb") as huge:
        huge.truncate(2 << 30)
    started = time.monotonic()
    skipped = scan_rootfs(root)
    assert skipped.packages == () and "larger than" in skipped.warnings[0]
    opened = scan_rootfs(root, limits=ScanLimits(archive_bytes=4 << 30))  # read: no zip in it
    assert opened.packages == () and opened.warnings == ()
    assert time.monotonic() - started < 5


def test_zip_bombs_are_not_inflated(tmp_path: Path) -> None:
    root = tmp_path / "root"
    zeros = b"\0" * (64 << 20)
    honest = jar_bytes({"META-INF/MANIFEST.MF": zeros, "META-INF/maven/g/a/pom.properties": zeros})
    write(root / "honest.jar", honest)
    # a central directory that claims a few bytes for 64 MiB of deflated zeros
    lying = bytearray(jar_bytes({"META-INF/maven/g/a/pom.properties": zeros}))
    directory = lying.rfind(b"PK\x01\x02")
    lying[directory + 20 : directory + 28] = (100).to_bytes(4, "little") * 2
    write(root / "lying.jar", bytes(lying))
    with zipfile.ZipFile(root / "lying.jar") as check:
        assert check.infolist()[0].file_size == 100
    tracemalloc.start()
    try:
        started = time.monotonic()
        inventory = scan_rootfs(root, limits=ScanLimits(hash_bytes=0))
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert inventory.packages == ()
    assert elapsed < 5
    assert peak < 8 << 20, peak


def test_too_many_members_is_refused_before_the_directory_is_loaded(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write(root / "many.jar", jar_bytes({f"f{i}": b"" for i in range(50)}))
    inventory = scan_rootfs(root, limits=ScanLimits(archive_members=10))
    # 46 bytes and the name for each member
    assert inventory.warnings == ("/many.jar: 50 members in 2440 bytes of directory, not read",)


def test_10000_levels_of_directories(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(10_000):
            os.mkdir("d", dir_fd=fd)
            deeper = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = deeper
        os.mkdir("node_modules", dir_fd=fd)
    finally:
        os.close(fd)
    write(root / "d/d/node_modules/shallow/package.json", '{"name": "shallow", "version": "1.0.0"}')
    try:
        inventory = scan_rootfs(root)
        assert {p.name for p in inventory.packages} == {"shallow"}
        assert inventory.warning_count == 1
        assert inventory.warnings[0].endswith("deeper than 256 directories, not scanned")
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=True)  # shutil.rmtree recurses


def test_undecodable_bytes_in_metadata_and_names(tmp_path: Path) -> None:
    root = tmp_path / "root"
    site = root / "usr/lib/python3/dist-packages"
    dist_info = os.fsencode(site) + b"/caf\xe9-1.0.dist-info"
    os.makedirs(dist_info)
    with open(dist_info + b"/METADATA", "wb") as metadata:
        metadata.write(b"Name: caf\xe9\nVersion: 1.0\xff\nLicense: \xfe\xff GPL\n")
    write(
        root / "var/lib/dpkg/status",
        b"Package: \xff\xfe\nStatus: install ok installed\nVersion: 1\n",
    )
    write(root / "node_modules/x/package.json", b'{"name": "x\xff", "version": "1"}')
    write(root / "node_modules/y/package.json", b"[" * 100_000)  # too deep for json
    inventory = scan_rootfs(root)
    assert {p.kind for p in inventory.packages} == {"python", "deb", "npm"}
    document = spdx_document(inventory, name="odd", created=datetime.now(UTC))
    assert validation_errors(document) == []
