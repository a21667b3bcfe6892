"""What killed polybuild processes leave in a data root: temp files and directories, leases,
snapshots and their mounts, runc containers; each is named after its owner's pid."""

from __future__ import annotations

import errno
import fcntl
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from polybuild import syscalls
from polybuild.check.problems import Problem
from polybuild.runtime import Runtime
from polybuild.syscalls import pid_alive

# Temp names, each with the writer's pid: write_file_atomic's `.NAME.PID-HEX.tmp`, the
# context hash cache's `NAME.PID.tmp`, cache mounts' and heredoc dirs' `NAME.tmp-PID[-HEX]`.
_TEMP_NAMES = (
    re.compile(r"^\..+\.(\d+)-[0-9a-f]+\.tmp$"),
    re.compile(r"^.+\.(\d+)\.tmp$"),
    re.compile(r"^.+\.tmp-(\d+)(?:-[0-9a-f]+)?$"),
)
# Directories of the data root that hold files replaced atomically (with temp names beside).
_TEMP_DIRS = ("", "builders", "cache", "cache-mounts", "inline")
_LAYER_NAME = re.compile(r"^[0-9a-f]{64}$")


def _dead(pid: str) -> bool:
    return pid.isdigit() and not pid_alive(int(pid))


def _alive(pid: str) -> bool:
    return pid.isdigit() and pid_alive(int(pid))


def remove_path(path: Path) -> str:
    """Remove a file or a directory tree; refuses a tree with a mount still inside."""
    if path.is_dir() and not path.is_symlink():
        busy = [m for m in mounts_under(path) if m != path] + (
            [path] if os.path.ismount(path) else []
        )
        if busy:
            raise OSError(errno.EBUSY, f"{busy[0]} is still mounted")
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    return "removed"


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def mounts_under(root: Path) -> list[Path]:
    """Mount points strictly below `root` in this mount namespace, deepest first."""
    base = os.path.realpath(root)
    found: list[Path] = []
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return found
    for line in text.splitlines():
        fields = line.split(" ")
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point.startswith(base.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _unmount(point: Path) -> None:
    try:
        syscalls.umount(point)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            return  # not (or no longer) a mount point
        syscalls.umount(point, syscalls.MNT_DETACH)


def _unmount_and_remove(path: Path) -> str:
    mounted = mounts_under(path) + ([path] if os.path.ismount(path) else [])
    for point in mounted:
        _unmount(point)
    remove_path(path)
    return "unmounted and removed" if mounted else "removed"


def find_leftovers(runtime: Runtime) -> list[Problem]:
    """Everything a dead process left, runc containers first (they hold mounts busy)."""
    found = [
        *_runc_containers(runtime),
        *_owned_by_dead(runtime.snapshots.active, "snapshot", r"^(\d+)-[0-9a-f]+$"),
        *_owned_by_dead(runtime.snapshots.root, "overlay probe", r"^probe-(\d+)-"),
        *_owned_by_dead(runtime.executor.bundles, "container bundle", r"^pb-(\d+)-[0-9a-f]+$"),
        *_owned_by_dead(runtime.root / "tmp", "scratch directory", r"^step-(\d+)-"),
        *_owned_by_dead(runtime.layers.root, "half-unpacked layer", r"^\.tmp-(\d+)-"),
    ]
    # Mounts inside those directories are unmounted with them.
    owned = [Path(p.subject) for p in found if p.area == "leftover"]
    return [
        *found,
        *_stray_mounts(runtime, owned),
        *_layer_entries(runtime),
        *_leases(runtime.root / "leases"),
        *_partial_blobs(runtime.store.content.ingest_dir),
        *_temp_files(runtime.root),
    ]


def _entries(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def _owned_by_dead(
    directory: Path, what: str, *patterns: str | re.Pattern[str]
) -> Iterator[Problem]:
    """Entries of `directory` named (by the first of `patterns` that says so) after a dead pid."""
    for path in _entries(directory):
        for pattern in patterns:
            match = re.match(pattern, path.name)
            if match and _dead(match.group(1)):
                yield Problem(
                    "leftover",
                    str(path),
                    f"{what} of process {match.group(1)}, which is gone",
                    repair=functools.partial(_unmount_and_remove, path),
                )
                break


def _removable(area: str, path: Path, detail: str) -> Problem:
    return Problem(area, str(path), detail, repair=functools.partial(remove_path, path))


def _runc_containers(runtime: Runtime) -> Iterator[Problem]:
    executor = runtime.executor
    for state in _entries(executor.runc_root):
        parts = state.name.split("-")
        if len(parts) == 3 and parts[0] == "pb" and _dead(parts[1]):
            yield Problem(
                "container",
                state.name,
                f"runc container of process {parts[1]}, which is gone ({state})",
                repair=functools.partial(_delete_container, executor.runtime, state),
            )


def _delete_container(runc: str, state: Path) -> str:
    binary = shutil.which(runc)
    if binary is not None:
        subprocess.run(
            [binary, "--root", str(state.parent), "delete", "--force", state.name],
            capture_output=True,
            check=False,
        )
    if state.exists():
        remove_path(state)  # runc could not: its state is all there is left of it
    return "deleted"


def _stray_mounts(runtime: Runtime, owned: list[Path]) -> Iterator[Problem]:
    """Mounts under the data root that neither a live snapshot nor a leftover directory
    (unmounted when it is removed) accounts for."""
    active = os.path.realpath(runtime.snapshots.active)
    owners = [os.path.realpath(p) for p in owned]
    for point in mounts_under(runtime.root):
        text = str(point)
        if any(text == o or text.startswith(o + "/") for o in owners):
            continue
        if text.startswith(active + "/"):
            owner = point.relative_to(active).parts[0].split("-")[0]
            if owner.isdigit() and not _dead(owner):
                continue  # a running build's or run's snapshot
        yield Problem(
            "mount",
            str(point),
            "mounted under the data root by no running polybuild",
            repair=functools.partial(_unmount_point, point),
        )


def _unmount_point(point: Path) -> str:
    _unmount(point)
    return "unmounted"


def _layer_entries(runtime: Runtime) -> Iterator[Problem]:
    """A file where an unpacked layer directory belongs would make every unpack of it fail."""
    for path in _entries(runtime.layers.root):
        if _LAYER_NAME.match(path.name) and not path.is_dir():
            yield _removable("layer", path, "not a directory, where the unpacked layer belongs")


def _leases(directory: Path) -> Iterator[Problem]:
    """Lease files no live process holds (a live lease is always flock()ed by its owner)."""
    for path in _entries(directory):
        name = path.name
        if name == ".sweep.lock":
            continue
        if name.startswith("."):
            # Still being registered: locked from just after creation; judge by the pid.
            parts = name[1:].split("-")
            stale = len(parts) == 3 and _dead(parts[1])
        else:
            parts = name.split("-")
            stale = not (len(parts) == 3 and _alive(parts[1])) and not _locked(path)
        if stale:
            yield _removable("lease", path, "held by no running process")


def _locked(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return True  # released meanwhile: nothing left over
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)
    return False


def _partial_blobs(ingest: Path) -> Iterator[Problem]:
    for path in _entries(ingest):
        # `PID-HEX.partial`, locked by its writer from just after creation
        pid = path.name.split("-")[0]
        if path.name.endswith(".partial") and not _alive(pid) and not _locked(path):
            yield _removable("leftover", path, "partial blob no running process is writing")


def _temp_files(root: Path) -> Iterator[Problem]:
    for directory in _TEMP_DIRS:
        yield from _owned_by_dead(root / directory, "temporary file", *_TEMP_NAMES)
