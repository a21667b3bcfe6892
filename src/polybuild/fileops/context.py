"""The build context as a COPY/ADD source: its file list and content checksums for cache keys."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from polybuild.dockerfile.ignore import IgnoreMatcher
from polybuild.errors import DockerfileError
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.sources import (
    ExpandOptions,
    expand_source,
    filtered,
    included,
    may_include_under,
)
from polybuild.fileops.view import SourceView
from polybuild.image.content import write_file_atomic

__all__ = [
    "content_checksum",
    "hidden_paths",
    "list_context_files",
    "load_hash_cache",
    "save_hash_cache",
]

# (dev, inode, size, mtime_ns, ctime_ns) -> sha256 of the content; ctime catches rewrites
# that restore the mtime. Bounded so a long-lived worker does not grow without end.
_HASHES: dict[tuple[int, int, int, int, int], str] = {}
_ADDED: list[int] = [0]  # hashes computed since the cache was loaded or saved
_MAX_CACHED = 200_000
_CHUNK = 1 << 20


def load_hash_cache(path: Path) -> None:
    """Remember file hashes a previous build computed (a warm build then only stats files)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return
    for line in lines[-_MAX_CACHED:]:
        parts = line.split()
        if len(parts) == 6 and all(p.isdigit() for p in parts[:5]):
            dev, ino, size, mtime, ctime = (int(p) for p in parts[:5])
            _HASHES[(dev, ino, size, mtime, ctime)] = parts[5]


def save_hash_cache(path: Path) -> None:
    """Write the known file hashes for the next build (atomically; losing it only costs time)
    when this build hashed a file; a build that only found hashes leaves the file as it is."""
    if not _ADDED[0] and path.exists():
        return
    _ADDED[0] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        f"{dev} {ino} {size} {mtime} {ctime} {digest}\n"
        for (dev, ino, size, mtime, ctime), digest in _HASHES.items()
    )
    # write_file_atomic also removes what a killed build's write left beside it.
    write_file_atomic(path, text.encode())


def _sorted_entries(host: str, rel: str) -> Iterator[tuple[os.DirEntry[str], str, bool]]:
    """The entries of directory `host` by name, each with its context path (`rel/name`) and
    whether it is a directory (a symlink is not)."""
    with os.scandir(host) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        child = f"{rel}/{entry.name}" if rel else entry.name
        yield entry, child, entry.is_dir(follow_symlinks=False)


def list_context_files(context_root: Path, ignore_patterns: Sequence[str] = ()) -> tuple[str, ...]:
    """Every path (directories too) in the context after .dockerignore, sorted, `/`-separated."""
    matcher = IgnoreMatcher(tuple(ignore_patterns)) if ignore_patterns else None
    found: list[str] = []

    def walk(host: str, rel: str) -> None:
        for entry, child, is_dir in _sorted_entries(host, rel):
            if matcher is not None and matcher.excluded(child):
                if is_dir and matcher.may_match_under(child):
                    walk(entry.path, child)
                continue
            found.append(child)
            if is_dir:
                walk(entry.path, child)

    walk(str(context_root), "")
    return tuple(found)


def _file_digest(host: str, st: os.stat_result) -> str:
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    cached = _HASHES.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    value = digest.hexdigest()
    if len(_HASHES) >= _MAX_CACHED:
        _HASHES.clear()
    _HASHES[key] = value
    _ADDED[0] += 1
    return value


def _record(out: list[bytes], path: str, host: str, st: os.stat_result, top_dir: bool) -> None:
    """One entry's line: path, type and what a copy reproduces (never owners or times)."""
    mode = st.st_mode
    kind = stat.S_IFMT(mode)
    if stat.S_ISREG(mode):
        extra = _file_digest(host, st)
    elif stat.S_ISLNK(mode):
        extra = os.readlink(host)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        extra = f"{os.major(st.st_rdev)},{os.minor(st.st_rdev)}"
    else:
        extra = ""
    # a copied directory's own mode is not reproduced (only its contents are)
    perm = 0 if top_dir else mode & 0o7777
    line = f"{path}\0{kind:o}\0{perm:o}\0{extra}\n"
    out.append(line.encode("utf-8", "surrogateescape"))


def content_checksum(
    context_root: Path,
    sources: Sequence[str],
    exclude: Sequence[str] = (),
    ignore_patterns: Sequence[str] = (),
    *,
    parents: bool = False,
    follow_symlinks: bool = True,
    instruction: str = "",
) -> str:
    """sha256 over exactly what `copy_files` would read for these sources from the context.

    It covers each copied entry's path, type, permission bits, symlink target and file
    content (hashed once per inode, size and times while the process lives), and not
    mtimes or owners, which the context does not carry into the cache key. Missing
    sources, and sources only reachable through .dockerignore'd paths, raise FileOpError
    (naming `instruction`) as the copy would.
    """
    try:
        exclude_m = IgnoreMatcher(tuple(exclude)) if exclude else None
        ignore_m = IgnoreMatcher(tuple(ignore_patterns)) if ignore_patterns else None
    except DockerfileError as exc:
        raise FileOpError(f"invalid pattern: {exc.message}", instruction=instruction) from None
    view = SourceView(context_root, ignore_m)
    opts = ExpandOptions(parents, exclude_m, follow_symlinks, True, True)
    out: list[bytes] = []
    for source in sources:
        out.append(f"source\0{source}\n".encode("utf-8", "surrogateescape"))
        for match in expand_source(view, source, opts, instruction):
            rel = "/".join(match.parts)
            host = view.host(match.resolved)
            st = os.lstat(host)
            _record(out, rel, str(host), st, top_dir=stat.S_ISDIR(st.st_mode))
            if stat.S_ISDIR(st.st_mode):
                prefix = "/".join(match.resolved)
                _walk(out, str(host), rel, "", prefix, match.include, exclude_m, ignore_m)
    return "sha256:" + hashlib.sha256(b"".join(out)).hexdigest()


def _walk(
    out: list[bytes],
    host_dir: str,
    shown: str,
    rel: str,
    prefix: str,
    include: str,
    exclude: IgnoreMatcher | None,
    ignore: IgnoreMatcher | None,
) -> bool:
    """Records for the children `copy_files` would copy; True when it recorded anything."""
    recorded = False
    with os.scandir(host_dir) as it:
        names = sorted(entry.name for entry in it)
    for name in names:
        child_rel = f"{rel}/{name}" if rel else name
        host = os.path.join(host_dir, name)
        st = os.lstat(host)
        left_out, descend = filtered(exclude, ignore, child_rel, prefix)
        matched = not include or included(include, child_rel)
        path = f"{shown}/{child_rel}" if shown else child_rel
        if not stat.S_ISDIR(st.st_mode):
            if matched and not left_out:
                _record(out, path, host, st, top_dir=False)
                recorded = True
            continue
        if matched and not left_out:
            _record(out, path, host, st, top_dir=False)
            _walk(out, host, shown, child_rel, prefix, include, exclude, ignore)
            recorded = True
            continue
        if (left_out and not descend) or (
            not matched and not may_include_under(include, child_rel)
        ):
            continue
        mark = len(out)
        if _walk(out, host, shown, child_rel, prefix, include, exclude, ignore):
            # a directory made only because something below it is copied
            line: list[bytes] = []
            _record(line, path, host, st, top_dir=False)
            out.insert(mark, line[0])
            recorded = True
    return recorded


def hidden_paths(context_root: Path, ignore_patterns: Sequence[str]) -> tuple[str, ...]:
    """The top-most context entries .dockerignore leaves out (what a bind mount must hide).

    A left-out directory holding a re-included (`!pattern`) path is not hidden itself; its
    left-out children are.
    """
    if not ignore_patterns:
        return ()
    included = set(list_context_files(context_root, ignore_patterns))
    prefixes = {"/".join(p.split("/")[:i]) for p in included for i in range(1, p.count("/") + 1)}
    hidden: list[str] = []

    def walk(host: str, rel: str) -> None:
        for entry, child, is_dir in _sorted_entries(host, rel):
            if child in included or child in prefixes:
                if is_dir:
                    walk(entry.path, child)
            else:
                hidden.append(child)

    walk(str(context_root), "")
    return tuple(hidden)
