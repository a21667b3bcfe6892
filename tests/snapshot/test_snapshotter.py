"""Snapshots over unpacked layers: a real RUN-like step, its diff, and clean-up."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from polybuild.executor import Process, RuncExecutor
from polybuild.layers import UnpackMode, directory_layer, open_decompressed, unpack_layer
from polybuild.snapshot import LayerStore, Snapshotter
from polybuild.testing.busybox import make_rootfs
from tests.conftest import require_root

STEP = "rm /etc/group && rm -rf /root && mkdir /root && echo new > /root/file && echo x > /added"


def base_layer(tmp_path: Path) -> tuple[LayerStore, Path, bytes, str]:
    rootfs = make_rootfs("amd64", tmp_path / "base-src")
    blob = io.BytesIO()
    desc = directory_layer(rootfs, blob)
    store = LayerStore(tmp_path / "layers")
    lower = store.ensure(str(desc.diff_id), lambda: io.BytesIO(blob.getvalue()))
    return store, lower, blob.getvalue(), str(desc.diff_id)


def tar_names(layer: bytes) -> list[str]:
    stream, _ = open_decompressed(io.BytesIO(layer))
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        return [m.name for m in tar]


def tree(root: Path) -> dict[str, str]:
    result = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            result[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            result[rel] = "dir"
        else:
            result[rel] = path.read_bytes().decode(errors="replace")[:40]
    return result


def overlay_mounts() -> int:
    return sum(
        " overlay " in line for line in Path("/proc/self/mountinfo").read_text().splitlines()
    )


@pytest.mark.root
@pytest.mark.parametrize("overlay", [True, False], ids=["overlayfs", "copy"])
def test_step_diff_applied_to_base_gives_the_new_tree(tmp_path: Path, overlay: bool) -> None:
    require_root()
    _, lower, base_blob, _ = base_layer(tmp_path)
    snapshotter = Snapshotter(tmp_path / "snapshots", overlay=overlay)
    assert snapshotter.uses_overlay is overlay
    mounts_before = overlay_mounts()
    snapshot = snapshotter.prepare([lower])
    status = RuncExecutor(tmp_path / "state").run(snapshot.rootfs, Process(("/bin/sh", "-c", STEP)))
    assert status.ok
    expected = tree(snapshot.rootfs)
    out = io.BytesIO()
    snapshotter.commit(snapshot, out)
    snapshotter.release(snapshot)
    assert overlay_mounts() == mounts_before
    assert list((tmp_path / "snapshots" / "active").iterdir()) == []

    names = tar_names(out.getvalue())
    assert "etc/.wh.group" in names and "added" in names and "root/file" in names
    assert not any(n.startswith("etc/hosts") or n.startswith("etc/resolv") for n in names)
    if overlay:
        assert "root/.wh..wh..opq" in names  # the directory was replaced: opaque
    # Base + diff, unpacked independently, is exactly what the container saw.
    merged = tmp_path / "check"
    merged.mkdir()
    unpack_layer(io.BytesIO(base_blob), merged, trusted=True)
    unpack_layer(io.BytesIO(out.getvalue()), merged, mode=UnpackMode.MERGED)
    assert tree(merged) == expected
    assert not (merged / "etc" / "group").exists()


@pytest.mark.root
def test_scratch_snapshot_has_no_lowers(tmp_path: Path) -> None:
    require_root()
    snapshotter = Snapshotter(tmp_path / "snapshots")
    snapshot = snapshotter.prepare([])
    assert list(snapshot.rootfs.iterdir()) == []
    (snapshot.rootfs / "hello").write_text("hi")
    out = io.BytesIO()
    snapshotter.commit(snapshot, out)
    snapshotter.release(snapshot)
    assert tar_names(out.getvalue()) == ["hello"]


@pytest.mark.root
def test_killed_owner_leaves_nothing_after_restart(tmp_path: Path) -> None:
    require_root()
    _, lower, _, _ = base_layer(tmp_path)
    root = tmp_path / "snapshots"
    mounts_before = overlay_mounts()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        import time
        from pathlib import Path
        from polybuild.snapshot import Snapshotter
        s = Snapshotter(Path({str(root)!r})).prepare([Path({str(lower)!r})])
        print(s.rootfs, flush=True)
        time.sleep(300)
    """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    rootfs = Path(child.stdout.readline().strip())
    assert (rootfs / "bin" / "busybox").exists()
    assert overlay_mounts() == mounts_before + 1
    child.send_signal(signal.SIGKILL)
    child.wait()
    time.sleep(0.1)
    assert len(Snapshotter(root).cleanup_stale()) == 1
    assert overlay_mounts() == mounts_before
    assert list((root / "active").iterdir()) == []


def test_layer_store_unpacks_once_and_verifies(tmp_path: Path) -> None:
    store, lower, blob, diff_id = base_layer(tmp_path)
    calls = []

    def opener() -> io.BytesIO:
        calls.append(1)
        return io.BytesIO(blob)

    assert store.ensure(diff_id, opener) == lower and calls == []
    from polybuild.errors import DigestMismatchError

    bogus = "sha256:" + "0" * 64
    with pytest.raises(DigestMismatchError):
        store.ensure(bogus, opener)
    assert not store.has(bogus)
    assert [p.name for p in (tmp_path / "layers").iterdir() if p.name.startswith(".tmp")] == []


@pytest.mark.root
def test_committed_upper_is_adopted_as_the_unpacked_layer(tmp_path: Path) -> None:
    require_root()
    store, lower, _, _ = base_layer(tmp_path)
    snapshotter = Snapshotter(tmp_path / "snapshots", overlay=True)
    snapshot = snapshotter.prepare([lower])
    status = RuncExecutor(tmp_path / "state").run(snapshot.rootfs, Process(("/bin/sh", "-c", STEP)))
    assert status.ok
    out = io.BytesIO()
    diff_id = str(snapshotter.commit(snapshot, out).diff_id)
    assert store.adopt(diff_id, snapshot.upper)
    snapshotter.release(snapshot)
    adopted = store.path(diff_id)
    for path in [adopted, *adopted.rglob("*")]:
        names = os.listxattr(path, follow_symlinks=False)
        assert not [n for n in names if n != "trusted.overlay.opaque" and "overlay" in n]
    # Stacked as a lower it gives exactly what unpacking the committed blob gives.
    unpacked = LayerStore(tmp_path / "other-layers").ensure(
        diff_id, lambda: io.BytesIO(out.getvalue())
    )
    views = []
    for top in (adopted, unpacked):
        view = snapshotter.prepare([lower, top])
        views.append(tree(view.rootfs))
        snapshotter.release(view)
    assert views[0] == views[1]
    assert "etc/group" not in views[0] and views[0]["root/file"] == "new\n"
    assert not store.adopt(diff_id, tmp_path)  # already there: left alone
