"""A data root on a full file system (a small tmpfs): build and pull fail with an error that
names the data root, leave nothing half-written, and the store still passes `polybuild check`."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild import syscalls
from polybuild.check.leftovers import mounts_under
from tests.conftest import import_busybox
from tests.reliability.harness import Lab, verify
from tests.reliability.scenarios import World

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

MIB = 1 << 20


@contextlib.contextmanager
def small_lab(world: World, name: str, size: int) -> Iterator[Lab]:
    """A lab whose data root is on a tmpfs of `size` bytes, unmounted afterwards."""
    work = world.base / "labs" / name
    mountpoint = work / "small"
    mountpoint.mkdir(parents=True)
    syscalls.mount("tmpfs", mountpoint, "tmpfs", 0, f"size={size},mode=0700")
    try:
        yield Lab(mountpoint / "root", work)
    finally:
        for point in [*mounts_under(mountpoint), mountpoint]:
            with contextlib.suppress(OSError):
                syscalls.umount(point, syscalls.MNT_DETACH)


def free(path: Path) -> int:
    return shutil.disk_usage(path).free


def assert_clear_failure(lab: Lab, stderr: str) -> None:
    assert str(lab.root) in stderr, stderr
    assert "space" in stderr.lower(), stderr
    assert "internal error" not in stderr, stderr


@pytest.mark.parametrize(
    "share",
    [
        pytest.param(0.6, id="the-layer-does-not-fit"),  # random bytes do not compress
        pytest.param(1.5, id="the-step-fills-the-disk"),
    ],
)
def test_build_on_a_full_disk(world: World, share: float) -> None:
    with small_lab(world, f"full-build-{share}", 24 * MIB) as lab:
        import_busybox(lab.root, ("amd64",))
        ctx = lab.work / "ctx"
        ctx.mkdir()
        size = int(free(lab.root) * share)
        (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN head -c {size} /dev/urandom > /big\n")
        proc = lab.run("build", "--platform", "linux/amd64", "-t", "big", "--load", str(ctx))
        assert proc.returncode != 0
        assert_clear_failure(lab, proc.stderr)
        assert verify(lab) == []
        # Nothing half-written holds the space, and a build that fits still works.
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo small > /small\n")
        lab.ok("build", "--platform", "linux/amd64", "-t", "small", "--load", str(ctx))
        assert lab.ok("run", "small", "cat", "/small") == "small\n"
        assert verify(lab) == []


def test_pull_on_a_full_disk(world: World) -> None:
    assert world.registry is not None
    ref = f"{world.registry}/rel/big:latest"
    with small_lab(world, "full-pull", 5 * MIB) as lab:
        proc = lab.run("pull", "--all-platforms", ref)
        assert proc.returncode != 0
        assert_clear_failure(lab, proc.stderr)
        assert verify(lab) == []
        assert not list((lab.root / "content" / "ingest").iterdir())
        # One platform fits once what the failed pull completed is pruned, as its hint says:
        # the platforms' layers download at once, and whichever finished before the disk
        # filled stays as a verified blob that no image names (amd64's or arm64's).
        lab.ok("prune", "--force")
        lab.ok("pull", "--platform", "linux/arm64", ref)
        assert verify(lab) == []
