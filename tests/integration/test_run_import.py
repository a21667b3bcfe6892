"""`polybuild import` six platforms into one image, then `polybuild run` each of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild.image import ImageStore
from polybuild.image.select import platform_manifests
from polybuild.platforms import format_platform
from polybuild.testing.busybox import make_rootfs_tar
from tests.conftest import require_platforms, require_root, require_tool
from tests.conftest import run_cli as polybuild

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

PLATFORMS = {
    "amd64": ("linux/amd64", "x86_64"),
    "arm64": ("linux/arm64", "aarch64"),
    "armhf": ("linux/arm/v7", "armv7l"),
    "armel": ("linux/arm/v6", "armv6l"),
    "ppc64el": ("linux/ppc64le", "ppc64le"),
    "s390x": ("linux/s390x", "s390x"),
}


@pytest.fixture(scope="module")
def busybox_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("runc")
    require_platforms(*(p for p, _ in PLATFORMS.values()))
    base = tmp_path_factory.mktemp("run-import")
    root = base / "root"
    for debian_arch, (platform, _) in PLATFORMS.items():
        tarball = make_rootfs_tar(debian_arch, base / f"{debian_arch}.tar")
        proc = polybuild(root, "import", "--platform", platform, str(tarball), "busybox")
        assert proc.returncode == 0, proc.stderr
    yield root
    assert list((root / "snapshots" / "active").iterdir()) == []
    assert list((root / "containers" / "bundles").iterdir()) == []


def test_one_image_with_six_platforms(busybox_store: Path) -> None:
    proc = polybuild(busybox_store, "images", "--format", "json")
    images = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(images) == 1 and images[0]["Repository"] == "busybox"
    assert images[0]["Platforms"] == [p for p, _ in PLATFORMS.values()]


@pytest.mark.parametrize(
    ("platform", "machine"),
    [
        (None, "x86_64"),
        ("linux/arm64", "aarch64"),
        ("linux/arm/v7", "armv7l"),
        ("linux/arm/v6", "armv6l"),
        ("linux/s390x", "s390x"),
    ],
)
def test_run_picks_the_variant(busybox_store: Path, platform: str | None, machine: str) -> None:
    args = [
        "run",
        "--rm",
        *(["--platform", platform] if platform else []),
        "busybox",
        "uname",
        "-m",
    ]
    proc = polybuild(busybox_store, *args)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == machine


def test_run_all_platforms_prints_each_under_its_platform(busybox_store: Path) -> None:
    proc = polybuild(busybox_store, "run", "--all-platforms", "busybox", "uname", "-m")
    assert proc.returncode == 0, proc.stderr
    rows = [tuple(part.strip() for part in line.split("|")) for line in proc.stdout.splitlines()]
    assert rows == list(PLATFORMS.values())


def test_run_by_digest_pins_that_variant(busybox_store: Path) -> None:
    store = ImageStore(busybox_store)
    record = store.resolve("busybox")
    children = {
        format_platform(p): d.digest for d, p in platform_manifests(store.content, record.target)
    }
    for platform, machine in (("linux/arm64", "aarch64"), ("linux/ppc64le", "ppc64le")):
        proc = polybuild(busybox_store, "run", f"busybox@{children[platform]}", "uname", "-m")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == machine
    # The index digest selects by platform as usual.
    proc = polybuild(busybox_store, "run", f"busybox@{record.target.digest}", "uname", "-m")
    assert proc.stdout.strip() == "x86_64"


def test_exit_code_stdin_env_user_workdir(busybox_store: Path) -> None:
    assert polybuild(busybox_store, "run", "busybox", "sh", "-c", "exit 42").returncode == 42
    proc = polybuild(busybox_store, "run", "-i", "busybox", "cat", stdin="piped\n")
    assert proc.stdout == "piped\n"
    proc = polybuild(
        busybox_store,
        "run",
        "-e",
        "GREETING=hi",
        "-w",
        "/tmp",
        "-u",
        "nobody",
        "--platform",
        "linux/arm64",
        "busybox",
        "sh",
        "-c",
        'echo "$GREETING $(pwd) $(id -u) $(uname -m)"',
    )
    assert proc.stdout.strip() == "hi /tmp 65534 aarch64"
    proc = polybuild(
        busybox_store,
        "run",
        "--network",
        "none",
        "busybox",
        "sh",
        "-c",
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    )
    assert proc.stdout.split() == ["lo"]


def test_errors_are_one_line_with_hints(busybox_store: Path) -> None:
    proc = polybuild(busybox_store, "run", "--platform", "linux/riscv64", "busybox", "true")
    assert proc.returncode != 0
    assert "no manifest for platform linux/riscv64" in proc.stderr
    assert "linux/arm64" in proc.stderr and "Traceback" not in proc.stderr
    proc = polybuild(busybox_store, "run", "missing-image", "true")
    assert proc.returncode != 0 and "no such image: missing-image" in proc.stderr


def test_reimport_replaces_only_that_platform(busybox_store: Path, tmp_path: Path) -> None:
    store = ImageStore(busybox_store)
    before = dict(
        (format_platform(p), d.digest)
        for d, p in platform_manifests(store.content, store.resolve("busybox").target)
    )
    tarball = make_rootfs_tar("s390x", tmp_path / "s390x.tar")
    with open(tarball, "ab") as f:  # same files, appended zero padding: same layer digest
        f.write(b"\0" * 1024)
    proc = polybuild(busybox_store, "import", "--platform", "linux/s390x", str(tarball), "busybox")
    assert proc.returncode == 0, proc.stderr
    after = dict(
        (format_platform(p), d.digest)
        for d, p in platform_manifests(store.content, store.resolve("busybox").target)
    )
    assert list(after) == list(before)
    assert {k: v for k, v in after.items() if k != "linux/s390x"} == {
        k: v for k, v in before.items() if k != "linux/s390x"
    }


def test_bad_tarball_is_named_and_nothing_is_tagged(busybox_store: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"this is not a tar archive" * 40)
    proc = polybuild(busybox_store, "import", "--platform", "linux/arm64", str(bad), "broken")
    assert proc.returncode != 0 and "bad.tar" in proc.stderr and "Traceback" not in proc.stderr
    assert polybuild(busybox_store, "run", "broken", "true").returncode != 0
    assert list((busybox_store / "tmp").iterdir()) == []


def test_sigkilled_run_leaves_nothing_after_the_next_start(busybox_store: Path) -> None:
    import signal
    import time

    def mounts() -> int:
        text = Path("/proc/self/mountinfo").read_text()
        return sum(str(busybox_store) in line for line in text.splitlines())

    env = {**os.environ, "POLYBUILD_ROOT": str(busybox_store)}
    marker = f"sigkill-run-{os.getpid()}"
    child = subprocess.Popen(
        [sys.executable, "-m", "polybuild", "run", "busybox", "sh", "-c", f"sleep 300; : {marker}"],
        env=env,
    )
    deadline = time.monotonic() + 60
    while (
        marker
        not in subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True, check=False
        ).stdout
    ):
        assert time.monotonic() < deadline, "the container never started"
        time.sleep(0.2)
    assert mounts() >= 1
    child.send_signal(signal.SIGKILL)
    child.wait()
    # The next polybuild command cleans up what the killed one left.
    assert polybuild(busybox_store, "run", "busybox", "true").returncode == 0
    time.sleep(0.5)
    assert mounts() == 0
    assert list((busybox_store / "snapshots" / "active").iterdir()) == []
    assert list((busybox_store / "containers" / "bundles").iterdir()) == []
    runc_root = busybox_store / "containers" / "runc"
    listed = subprocess.run(
        ["runc", "--root", str(runc_root), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.stdout.strip() == ""
    assert (
        marker
        not in subprocess.run(
            ["ps", "-eo", "args"], capture_output=True, text=True, check=False
        ).stdout
    )
