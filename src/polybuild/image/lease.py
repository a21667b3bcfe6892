"""Leases: a live process's promise that blobs it is writing are not garbage yet.

A lease is a file under `leases/`, flock()ed by its owner for as long as it lives. Garbage
collection keeps every blob written (or re-put) since the start of any live lease, so a
build or load that has stored blobs but not yet named its image never loses them. A lease
whose owner died is no longer locked and is removed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

from polybuild.syscalls import pid_alive

# mtimes and time.time() can disagree slightly (coarse filesystem timestamps); keep a margin.
CLOCK_SLACK_SECONDS = 2.0


@contextlib.contextmanager
def hold_lease(leases_dir: Path) -> Iterator[Path]:
    """Hold a lease while the block runs; yields the lease file's path."""
    leases_dir.mkdir(parents=True, exist_ok=True)
    name = f"{time.time():.6f}-{os.getpid()}-{secrets.token_hex(4)}"
    path = leases_dir / name
    # Locked under a name collectors skip, then renamed: a collector never sees it unlocked.
    pending = leases_dir / f".{name}"
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        # A lease may not start while a collection sweeps (it could re-use a blob the sweep
        # has already judged garbage); the collector holds this lock exclusively meanwhile.
        with sweep_lock(leases_dir, exclusive=False):
            os.rename(pending, path)
        # Leases of killed processes are garbage too; only a collection used to remove them.
        oldest_live_lease(leases_dir)
        yield path
    finally:
        for leftover in (path, pending):
            with contextlib.suppress(OSError):
                leftover.unlink()
        os.close(fd)


@contextlib.contextmanager
def sweep_lock(leases_dir: Path, *, exclusive: bool) -> Iterator[None]:
    """Shared while a lease registers, exclusive while garbage collection sweeps."""
    leases_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(leases_dir / ".sweep.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def oldest_live_lease(leases_dir: Path) -> float | None:
    """The start time of the oldest live lease (minus slack); removes dead leases."""
    oldest: float | None = None
    try:
        entries = list(os.scandir(leases_dir))
    except FileNotFoundError:
        return None
    for entry in entries:
        if entry.name.startswith("."):
            # Still being set up by hold_lease (locked from just after creation), unless its
            # owner was killed before it could rename it.
            owner = entry.name[1:].split("-")
            if len(owner) == 3 and owner[1].isdigit() and not pid_alive(int(owner[1])):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
            continue
        try:
            started = float(entry.name.split("-", 1)[0])
        except ValueError:
            continue
        if remove_unless_locked(entry.path) is False:
            oldest = started if oldest is None else min(oldest, started)
    return None if oldest is None else oldest - CLOCK_SLACK_SECONDS


def remove_unless_locked(path: str) -> bool | None:
    """Remove `path` unless a live process holds a flock on it (a lease, a partial blob).

    True when this removed it, False when it is held (and kept), None when it was gone.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return None
        return True
    finally:
        os.close(fd)
