"""Writable root filesystems for steps: overlayfs over unpacked layers, or a copy fallback.

A snapshot stacks lower directories (unpacked layers, bottom first) under a fresh upper
directory. `commit` turns what the step changed into a layer; `release` unmounts and
removes everything. Each snapshot directory is named after the owning process, so one
left by a killed polybuild is found and removed by the next one (`cleanup_stale`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from polybuild import syscalls
from polybuild.errors import ExecutionError
from polybuild.image.layer import Layer
from polybuild.layers import changes_layer, upper_layer
from polybuild.layers.layer import DEFAULT_FORMAT, LayerFormat

OPAQUE_XATTR = "trusted.overlay.opaque"


def distinct_lowers(lowers: Sequence[Path]) -> list[Path]:
    """Each layer directory once, at its topmost place. overlayfs refuses a directory twice
    in lowerdir (ELOOP: two `RUN echo x` in a row make the same empty layer), and a layer
    below its own second copy changes nothing: the copy above holds every path it has."""
    seen: set[str] = set()
    kept: list[Path] = []
    for lower in reversed(lowers):
        key = os.path.realpath(lower)
        if key not in seen:
            seen.add(key)
            kept.append(lower)
    return kept[::-1]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An active snapshot: `rootfs` is what a container sees and writes."""

    key: str
    directory: Path
    rootfs: Path
    overlay: bool

    @property
    def upper(self) -> Path:
        return self.directory / "upper"

    @property
    def base(self) -> Path:
        """Copy mode only: the pristine lower tree the changes are computed against."""
        return self.directory / "base"


def _is_mountpoint(path: Path) -> bool:
    return os.path.ismount(path)  # unlike a mountinfo scan, safe for names with spaces


class Snapshotter:
    """Creates, commits and removes snapshots under `root`."""

    def __init__(self, root: Path, *, overlay: bool | None = None) -> None:
        self.root = root
        self.active = root / "active"
        self._overlay = overlay

    @property
    def uses_overlay(self) -> bool:
        if self._overlay is None:
            self._overlay = self._overlay_works()
        return self._overlay

    def _overlay_works(self) -> bool:
        if os.geteuid() != 0:
            return False
        probe = self.root / f"probe-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            for name in ("lower", "upper", "work", "merged"):
                (probe / name).mkdir(parents=True)
            self._mount_overlay(
                [probe / "lower"], probe / "upper", probe / "work", probe / "merged"
            )
            syscalls.umount(probe / "merged", syscalls.MNT_DETACH)
            return True
        except OSError:
            return False
        finally:
            shutil.rmtree(probe, ignore_errors=True)

    @staticmethod
    def _mount_overlay(lowers: Sequence[Path], upper: Path, work: Path, merged: Path) -> None:
        # /proc/self/fd paths keep the option string short however deep the layer chain is.
        fds = [os.open(p, os.O_RDONLY | os.O_DIRECTORY) for p in reversed(lowers)]
        try:
            lowerdir = ":".join(f"/proc/self/fd/{fd}" for fd in fds)
            syscalls.mount(
                "overlay",
                merged,
                "overlay",
                0,
                f"lowerdir={lowerdir},upperdir={upper},workdir={work},"
                "index=off,redirect_dir=off,metacopy=off",
            )
        finally:
            for fd in fds:
                os.close(fd)

    def prepare(self, lowers: Sequence[Path], *, hide: Sequence[str] = ()) -> Snapshot:
        """A writable root over `lowers` (bottom layer first; may be empty for scratch).

        `hide` lists paths (relative, `/`-separated) of the top lower that the snapshot must
        not show, such as a build context's .dockerignore'd files: whiteouts in the upper
        directory (or deletions, in copy mode) hide them without touching the lower.
        """
        self.cleanup_stale()
        key = f"{os.getpid()}-{secrets.token_hex(6)}"
        directory = self.active / key
        directory.mkdir(parents=True)
        try:
            if self.uses_overlay:
                for name in ("upper", "work", "merged", "empty"):
                    (directory / name).mkdir()
                if hide and lowers:
                    _whiteouts(lowers[-1], directory / "upper", hide)
                stack = distinct_lowers(lowers) or [directory / "empty"]
                self._mount_overlay(
                    stack, directory / "upper", directory / "work", directory / "merged"
                )
                return Snapshot(key, directory, directory / "merged", overlay=True)
            (directory / "base").mkdir()
            for lower in lowers:
                merge_overlay_dir(lower, directory / "base")
            for rel in hide:
                _remove_path(directory / "base" / rel)
            (directory / "rootfs").mkdir()
            merge_overlay_dir(directory / "base", directory / "rootfs")  # devices stay nodes
            return Snapshot(key, directory, directory / "rootfs", overlay=False)
        except OSError as exc:
            self._remove(directory)
            raise ExecutionError(f"cannot prepare a root filesystem: {exc}") from exc

    def commit(
        self, snapshot: Snapshot, out: BinaryIO, layer_format: LayerFormat = DEFAULT_FORMAT
    ) -> Layer:
        """Write what changed in `snapshot` as a layer into `out` (the snapshot is unmounted)."""
        if snapshot.overlay:
            with contextlib.suppress(OSError):
                syscalls.umount(snapshot.rootfs)
            return upper_layer(snapshot.upper, out, layer_format)
        return changes_layer(snapshot.base, snapshot.rootfs, out, layer_format)

    def release(self, snapshot: Snapshot) -> None:
        """Unmount and delete the snapshot."""
        self._remove(snapshot.directory)

    def _remove(self, directory: Path) -> None:
        merged = directory / "merged"
        if merged.exists() and _is_mountpoint(merged):
            try:
                syscalls.umount(merged)
            except OSError as exc:
                if exc.errno != errno.EINVAL:
                    syscalls.umount(merged, syscalls.MNT_DETACH)
        shutil.rmtree(directory, ignore_errors=True)

    def cleanup_stale(self) -> list[str]:
        """Remove snapshots (and overlay probes) whose owning polybuild process is gone."""
        removed: list[str] = []
        if not self.root.exists():
            return removed
        probes = [p for p in self.root.iterdir() if p.name.startswith("probe-")]
        active = list(self.active.iterdir()) if self.active.exists() else []
        for directory in [*active, *probes]:
            pid = directory.name.removeprefix("probe-").split("-")[0]
            if pid.isdigit() and not syscalls.pid_alive(int(pid)):
                self._remove(directory)
                removed.append(directory.name)
        return removed


def merge_overlay_dir(lower: Path, target: Path) -> None:
    """Apply one overlay-form layer directory onto `target` (copy mode's stacking).

    Only regular files are read: links, devices and FIFOs are made anew (never opened), so
    an untrusted tree's device nodes cannot make us read a host device.
    """
    for dirpath, dirnames, filenames in os.walk(lower):
        rel = Path(dirpath).relative_to(lower)
        dest_dir = target / rel
        if rel != Path(".") and _opaque(Path(dirpath)) and dest_dir.is_dir():
            shutil.rmtree(dest_dir)
        if not dest_dir.is_dir() or dest_dir.is_symlink():
            _remove_path(dest_dir)
            dest_dir.mkdir()
        shutil.copystat(dirpath, dest_dir, follow_symlinks=False)
        _chown(Path(dirpath), dest_dir)
        for name in [*filenames, *[d for d in dirnames if (Path(dirpath) / d).is_symlink()]]:
            src = Path(dirpath) / name
            dst = dest_dir / name
            st = os.lstat(src)
            _remove_path(dst)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                continue  # a whiteout: the lower entry is deleted
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(src), dst)
            elif stat.S_ISREG(st.st_mode):
                shutil.copy2(src, dst, follow_symlinks=False)
            else:
                os.mknod(dst, st.st_mode, st.st_rdev)
            _chown(src, dst)


def _whiteouts(lower: Path, upper: Path, hide: Sequence[str]) -> None:
    """Char 0/0 devices in `upper` for each path of `lower` to hide (parents mirror lower's)."""
    for rel in hide:
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            parent = upper.joinpath(*parts[:depth])
            if not parent.exists():
                source = lower.joinpath(*parts[:depth])
                parent.mkdir()
                shutil.copystat(source, parent, follow_symlinks=False)
                _chown(source, parent)
        os.mknod(upper / rel, stat.S_IFCHR | 0o000, os.makedev(0, 0))


def _opaque(path: Path) -> bool:
    try:
        return os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
    except OSError:
        return False


def _remove_path(path: Path) -> None:
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def _chown(src: Path, dst: Path) -> None:
    if os.geteuid() == 0:
        st = os.lstat(src)
        os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
