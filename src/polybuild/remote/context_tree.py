"""Bring a directory to exactly a client's context manifest from the node's context cache,
rewriting only what differs from what it holds (a warm build rewrites nothing).

What the directory holds is learnt from the directory itself (each entry's lstat, symlink
targets) and, for a regular file's content, from `known`: the digest each file had when
this module last wrote or checked it, with the inode number and ctime it had then. A file
is trusted to still have that content only while its inode and ctime are unchanged: any
write, chmod, utime or replacement changes the ctime (which user space cannot set), and
this module replaces content only by renaming a new file over the old one (a new inode).
Anything else (a wrong type, a path the manifest lacks, an unknown or touched file) is
removed or rewritten. Nothing is created through a symlink: the manifest is checked
first (`check_manifest`: no `..`, no entry under a file or a symlink), and every existing
entry whose type differs from the manifest's is removed before anything is created, so
each parent of a path written here is a real directory.

The caller must hold the directory alone while it syncs and while the build reads it
(`context_mirrors` leases it); a build never writes it (COPY reads it, a RUN bind mount of
the context is an overlay with this directory as its read-only lower layer).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from polybuild.remote.contextcache import ContextCache, check_manifest
from polybuild.remote.messages import ContextEntry

_PERMISSIONS = 0o7777 & ~(stat.S_ISUID | stat.S_ISGID)  # no set-id bits from a client


@dataclass(frozen=True, slots=True)
class Written:
    """A regular file of the tree as this module left it: the digest of its content and
    the inode and ctime it had then."""

    digest: str
    inode: int
    ctime_ns: int


def _wanted(entries: Iterable[ContextEntry]) -> dict[str, int]:
    """Every path the tree must have, with its type: the entries, and each entry's parent
    directories (a manifest may leave out a directory that .dockerignore excludes)."""
    kinds: dict[str, int] = {}
    for entry in entries:
        parts = entry.path.split("/")
        for end in range(1, len(parts)):
            kinds.setdefault("/".join(parts[:end]), stat.S_IFDIR)
        kinds[entry.path] = stat.S_IFMT(entry.mode)
    return kinds


def _remove(path: str, st: os.stat_result) -> None:
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _prune(dest: str, kinds: Mapping[str, int]) -> dict[str, os.stat_result]:
    """Remove what the manifest does not have (or has as another type); the lstat of what
    stays, by context path. Unless this is root, directories are made searchable and
    writable by their owner while the tree is synced (their own modes are set last)."""
    present: dict[str, os.stat_result] = {}
    pending = [("", dest)]
    while pending:
        rel, host = pending.pop()
        with os.scandir(host) as it:
            children = list(it)
        for child in children:
            path = f"{rel}/{child.name}" if rel else child.name
            st = child.stat(follow_symlinks=False)
            if kinds.get(path) != stat.S_IFMT(st.st_mode):
                _remove(child.path, st)
                continue
            present[path] = st
            if stat.S_ISDIR(st.st_mode):
                if st.st_mode & stat.S_IRWXU != stat.S_IRWXU and os.geteuid() != 0:
                    os.chmod(child.path, stat.S_IMODE(st.st_mode) | stat.S_IRWXU)
                pending.append((path, child.path))
    return present


def _install(cache: ContextCache, entry: ContextEntry, host: str, scratch: Path) -> None:
    """The cached file as a new inode at `host`, with its mode and time (renamed into place,
    so it replaces whatever file was there in one step)."""
    temp = scratch / secrets.token_hex(8)
    try:
        shutil.copyfile(cache.file(entry.digest), temp)
        os.chmod(temp, entry.mode & _PERMISSIONS)
        os.utime(temp, ns=(entry.mtime_ns, entry.mtime_ns))
        os.rename(temp, host)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _sync_file(
    cache: ContextCache,
    entry: ContextEntry,
    host: str,
    st: os.stat_result | None,
    known: Written | None,
    scratch: Path,
) -> Written:
    mode = entry.mode & _PERMISSIONS
    trusted = (
        st is not None
        and known == Written(entry.digest, st.st_ino, st.st_ctime_ns)
        and st.st_size == entry.size
    )
    if not trusted or st is None:
        _install(cache, entry, host, scratch)
    elif stat.S_IMODE(st.st_mode) == mode and st.st_mtime_ns == entry.mtime_ns:
        return Written(entry.digest, st.st_ino, st.st_ctime_ns)  # untouched
    else:
        os.chmod(host, mode)
        os.utime(host, ns=(entry.mtime_ns, entry.mtime_ns))
    after = os.lstat(host)
    return Written(entry.digest, after.st_ino, after.st_ctime_ns)


def _sync_symlink(entry: ContextEntry, host: str, st: os.stat_result | None) -> None:
    if st is not None and os.readlink(host) == entry.target:
        if st.st_mtime_ns != entry.mtime_ns:
            os.utime(host, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)
        return
    if st is not None:
        os.unlink(host)
    os.symlink(entry.target, host)
    os.utime(host, ns=(entry.mtime_ns, entry.mtime_ns), follow_symlinks=False)


def sync_tree(
    cache: ContextCache,
    entries: Iterable[ContextEntry],
    dest: Path,
    known: Mapping[str, Written],
    scratch: Path,
) -> dict[str, Written]:
    """Make `dest` (an existing directory) hold exactly `entries`: directories with their
    permission bits, files from `cache` with theirs (never set-id bits), symlinks as they
    are, all with their times. `known` is what an earlier sync returned (empty for a new
    directory); `scratch` is a private directory on the same file system for new files.
    Returns what to pass as `known` next time."""
    entries = list(entries)
    check_manifest(entries)
    by_path = {entry.path: entry for entry in entries}
    kinds = _wanted(entries)
    present = _prune(str(dest), kinds)
    written: dict[str, Written] = {}
    for path in sorted(kinds):  # a parent sorts before its children
        host = os.path.join(dest, path)
        st = present.get(path)
        kind = kinds[path]
        if kind == stat.S_IFDIR:
            if st is None:  # a listed directory gets its mode last; an unlisted one keeps this
                os.mkdir(host, 0o700 if path in by_path else 0o777)
        elif kind == stat.S_IFLNK:
            _sync_symlink(by_path[path], host, st)
        else:
            entry = by_path[path]
            written[path] = _sync_file(cache, entry, host, st, known.get(path), scratch)
    # Directories last, children first: creating an entry changes its parent's time, and a
    # 0555 directory must stay writable until its children are in place.
    for path in sorted((p for p, k in kinds.items() if k == stat.S_IFDIR), reverse=True):
        listed = by_path.get(path)
        if listed is None:
            continue  # a parent the manifest does not list: as mkdir made it
        host = os.path.join(dest, path)
        st = os.lstat(host)
        if stat.S_IMODE(st.st_mode) != listed.mode & _PERMISSIONS:
            os.chmod(host, listed.mode & _PERMISSIONS)
        if st.st_mtime_ns != listed.mtime_ns:
            os.utime(host, ns=(listed.mtime_ns, listed.mtime_ns))
    return written
