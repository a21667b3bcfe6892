"""A node's persistent context directories: one per client context (and spares for
concurrent solves of it), each leased by one solve at a time and synced incrementally, so a
warm build neither copies its context again nor re-hashes it.

Under `<data root>/remote/contexts/<sha256 of the solve's context_key>/<n>/` (n < SLOTS),
each slot has `lock` (flock'ed by the solve that uses the slot, from before the sync until
its build has ended), `tree/` (the context the build reads), `state.json` (what
`context_tree.sync_tree` last left in the tree: each file's digest, inode and ctime) and
`tmp/` (new files before they are renamed into the tree). A solve takes the first free slot
of its key; when all are busy it gets a fresh directory of its own that goes with it. The
key is only a hint for reuse: a slot is made to hold the solve's manifest whatever it held
before, so a client that lies about its key costs time, never correctness. Two solves never
share a tree at the same time, and one never sees another's files.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from polybuild.image.content import write_file_atomic
from polybuild.remote.context_tree import Written, sync_tree
from polybuild.remote.contextcache import ContextCache
from polybuild.remote.messages import ContextEntry

CONTEXTS_DIR = Path("remote") / "contexts"
SLOTS = 4  # trees kept per context key: as many solves of one context at once stay warm
_STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Mirror:
    """A leased slot: the tree a build reads, its state file and its scratch directory."""

    tree: Path
    state: Path
    scratch: Path


def slot_base(data_root: Path, key: str) -> Path:
    """Where the slots of context `key` are (the key is the client's: hashed, never a path)."""
    name = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return data_root / CONTEXTS_DIR / name


@contextlib.contextmanager
def lease(data_root: Path, key: str) -> Iterator[Mirror | None]:
    """The first free slot of `key`, held until the block ends; None when all are busy."""
    base = slot_base(data_root, key)
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    for number in range(SLOTS):
        slot = base / str(number)
        slot.mkdir(exist_ok=True, mode=0o700)
        fd = os.open(slot / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        try:
            yield Mirror(slot / "tree", slot / "state.json", slot / "tmp")
        finally:
            os.close(fd)  # releases the lock
        return
    yield None


def _load_state(path: Path) -> dict[str, Written]:
    """The state a finished sync saved; empty (everything is rewritten) when it is missing or
    unreadable."""
    try:
        data = json.loads(path.read_bytes())
        if data.get("version") != _STATE_VERSION:
            return {}
        return {str(p): Written(str(d), int(i), int(c)) for p, (d, i, c) in data["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def _save_state(path: Path, written: dict[str, Written]) -> None:
    files = {p: [w.digest, w.inode, w.ctime_ns] for p, w in written.items()}
    text = json.dumps({"version": _STATE_VERSION, "files": files}, separators=(",", ":"))
    write_file_atomic(path, text.encode())


def sync_mirror(cache: ContextCache, entries: Iterable[ContextEntry], mirror: Mirror) -> Path:
    """Bring a leased slot's tree to `entries`; its path. A sync that fails leaves the old
    state file: what it did changed the inodes or ctimes it names, so the next sync of the
    slot rewrites those files."""
    mirror.tree.mkdir(exist_ok=True, mode=0o755)
    shutil.rmtree(mirror.scratch, ignore_errors=True)  # what a killed sync left
    mirror.scratch.mkdir(mode=0o700)
    known = _load_state(mirror.state)
    written = sync_tree(cache, entries, mirror.tree, known, mirror.scratch)
    if written != known:
        _save_state(mirror.state, written)
    return mirror.tree


def fresh_tree(cache: ContextCache, entries: Iterable[ContextEntry], work_dir: Path) -> Path:
    """The context in a new directory under `work_dir` (for a solve that found every slot
    busy; removed with `work_dir`)."""
    tree = work_dir / "context"
    tree.mkdir()
    sync_tree(cache, entries, tree, {}, work_dir)
    return tree
