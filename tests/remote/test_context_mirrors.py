"""A node's persistent context directories: a warm sync rewrites nothing, every change of
the manifest (content, time, mode, type, removal) reaches the tree, a file touched behind
the node's back is rewritten, and a leased slot is never handed to a second solve."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from polybuild.errors import RemoteError
from polybuild.remote import context_mirrors
from polybuild.remote.context_mirrors import SLOTS, lease, sync_mirror
from polybuild.remote.contextcache import ContextCache
from polybuild.remote.messages import ContextEntry

OLD = 1_000_000_000_000_000_000  # 2001, in ns


def put(
    cache: ContextCache, path: str, data: bytes, mode: int = 0o644, t: int = OLD
) -> ContextEntry:
    cache.store.put(data)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return ContextEntry(path, stat.S_IFREG | mode, len(data), digest, mtime_ns=t)


def directory(path: str, mode: int = 0o755, t: int = OLD) -> ContextEntry:
    return ContextEntry(path, stat.S_IFDIR | mode, mtime_ns=t)


def link(path: str, target: str, t: int = OLD) -> ContextEntry:
    return ContextEntry(path, stat.S_IFLNK | 0o777, target=target, mtime_ns=t)


def snapshot(tree: Path) -> dict[str, tuple[int, int, int, int]]:
    """Every entry's (inode, ctime, mode, mtime): what a rewrite or a chmod would change."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            out[str(path.relative_to(tree))] = (
                st.st_ino,
                st.st_ctime_ns,
                st.st_mode,
                st.st_mtime_ns,
            )
    return out


def contents(tree: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    for dirpath, dirnames, filenames in os.walk(tree):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = os.lstat(path)
            rel = str(path.relative_to(tree))
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", oct(stat.S_IMODE(st.st_mode)), st.st_mtime_ns)
            else:
                out[rel] = (path.read_bytes(), oct(stat.S_IMODE(st.st_mode)), st.st_mtime_ns)
    return out


def test_a_warm_sync_rewrites_nothing(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cache = ContextCache(root)
    entries = [
        directory("d", 0o555),
        put(cache, "d/a", b"A" * 100_000, 0o755),
        put(cache, "b", b"B"),
        link("l", "d/a"),
    ]
    with lease(root, "k") as mirror:
        assert mirror is not None
        tree = sync_mirror(cache, entries, mirror)
        first = snapshot(tree)
        assert contents(tree) == {
            "d": ("dir", "0o555", OLD),
            "d/a": (b"A" * 100_000, "0o755", OLD),
            "b": (b"B", "0o644", OLD),
            "l": ("link", "d/a", OLD),
        }
        state = mirror.state.stat()
    with lease(root, "k") as mirror:  # the same slot again: nothing to do
        assert mirror is not None and sync_mirror(cache, entries, mirror) == tree
        assert snapshot(tree) == first
        assert mirror.state.stat().st_ino == state.st_ino  # not even the state rewritten


def test_every_change_of_the_manifest_reaches_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cache = ContextCache(root)
    before = [
        directory("d", 0o555),
        put(cache, "d/same", b"same"),
        put(cache, "d/content", b"old content"),
        put(cache, "times", b"t"),
        put(cache, "mode", b"m"),
        put(cache, "gone", b"g"),
        put(cache, "was-file", b"f"),
        directory("was-dir"),
        put(cache, "was-dir/inside", b"i"),
        link("link", "d/same"),
    ]
    after = [
        directory("d", 0o750, t=OLD + 1),
        put(cache, "d/same", b"same"),
        put(cache, "d/content", b"new content"),
        put(cache, "times", b"t", t=OLD + 5),
        put(cache, "mode", b"m", 0o600),
        directory("was-file"),
        put(cache, "was-file/now", b"n"),
        link("was-dir", "d"),
        link("link", "d/content"),
        put(cache, "new", b"new file"),
    ]
    with lease(root, "k") as mirror:
        assert mirror is not None
        tree = sync_mirror(cache, before, mirror)
        old = snapshot(tree)
        sync_mirror(cache, after, mirror)
    assert contents(tree) == {
        "d": ("dir", "0o750", OLD + 1),
        "d/same": (b"same", "0o644", OLD),
        "d/content": (b"new content", "0o644", OLD),
        "times": (b"t", "0o644", OLD + 5),
        "mode": (b"m", "0o600", OLD),
        "was-file": ("dir", "0o755", OLD),
        "was-file/now": (b"n", "0o644", OLD),
        "was-dir": ("link", "d", OLD),
        "link": ("link", "d/content", OLD),
        "new": (b"new file", "0o644", OLD),
    }
    now = snapshot(tree)
    assert now["d/same"] == old["d/same"]  # untouched
    assert now["d/content"][0] != old["d/content"][0]  # a new inode, never rewritten in place
    assert now["times"][0] == old["times"][0]  # the same inode, its time set


def test_a_file_touched_behind_the_nodes_back_is_rewritten(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cache = ContextCache(root)
    entries = [put(cache, "f", b"the content")]
    with lease(root, "k") as mirror:
        assert mirror is not None
        tree = sync_mirror(cache, entries, mirror)
        (tree / "f").write_bytes(b"tampered!!!")  # same size, time put back: only ctime tells
        os.utime(tree / "f", ns=(OLD, OLD))
        (tree / "extra").write_bytes(b"not in the manifest")
        sync_mirror(cache, entries, mirror)
    assert contents(tree) == {"f": (b"the content", "0o644", OLD)}


def test_a_damaged_state_file_costs_a_rewrite_only(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cache = ContextCache(root)
    entries = [put(cache, "f", b"x")]
    with lease(root, "k") as mirror:
        assert mirror is not None
        tree = sync_mirror(cache, entries, mirror)
        inode = os.lstat(tree / "f").st_ino
        mirror.state.write_text("{not json")
        sync_mirror(cache, entries, mirror)
        assert os.lstat(tree / "f").st_ino != inode
        assert contents(tree) == {"f": (b"x", "0o644", OLD)}


def test_a_leased_slot_is_never_leased_again_until_released(tmp_path: Path) -> None:
    root = tmp_path / "root"
    with lease(root, "k") as first, lease(root, "k") as second, lease(root, "other") as third:
        assert first is not None and second is not None and third is not None
        assert len({first.tree, second.tree, third.tree}) == 3
    held = [lease(root, "k") for _ in range(SLOTS)]
    mirrors = [h.__enter__() for h in held]
    try:
        assert None not in mirrors and len({m.tree for m in mirrors if m}) == SLOTS
        with lease(root, "k") as busy:
            assert busy is None  # the solve gets a fresh directory of its own
    finally:
        for h in held:
            h.__exit__(None, None, None)
    with lease(root, "k") as again:
        assert again is not None and again.tree == first.tree


def test_the_key_never_becomes_a_path(tmp_path: Path) -> None:
    base = context_mirrors.slot_base(tmp_path, "../../etc/x")
    assert base.parent == tmp_path / context_mirrors.CONTEXTS_DIR
    assert len(base.name) == 32 and all(c in "0123456789abcdef" for c in base.name)


def test_a_symlink_left_in_the_tree_is_never_followed(tmp_path: Path) -> None:
    root = tmp_path / "root"
    cache = ContextCache(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    with lease(root, "k") as mirror:
        assert mirror is not None
        tree = sync_mirror(cache, [link("d", str(outside))], mirror)
        sync_mirror(cache, [directory("d"), put(cache, "d/f", b"x")], mirror)
        assert not (tree / "d").is_symlink()
        assert contents(tree)["d/f"] == (b"x", "0o644", OLD)
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    "entries",
    [
        [ContextEntry("f", 0o100644, 1, "sha256:" + "0" * 64), directory("f/under-file")],
        [link("l", "/"), directory("l/under-link")],
    ],
    ids=["under-a-file", "under-a-symlink"],
)
def test_a_manifest_with_an_entry_under_a_non_directory_is_refused(
    tmp_path: Path, entries: list[ContextEntry]
) -> None:
    cache = ContextCache(tmp_path / "root")
    with lease(tmp_path / "root", "k") as mirror:
        assert mirror is not None
        with pytest.raises(RemoteError, match="under a symlink or a file"):
            sync_mirror(cache, entries, mirror)
