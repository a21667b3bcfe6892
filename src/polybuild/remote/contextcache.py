"""The node's content-addressed cache of build-context files, and the private context
directory it materialises from it for one build.

Files are kept by sha256 under `<data root>/remote/context` (the content store's layout:
written atomically, verified on write), so a file the node has seen before is never sent
again, whichever path or build it belongs to. The client's manifest is checked before
anything is created: paths stay inside the directory, only directories, regular files and
symlinks exist.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from polybuild.errors import RemoteError
from polybuild.image.content import BlobWriter, ContentStore
from polybuild.image.digest import Digest, InvalidDigestError
from polybuild.remote.messages import ContextEntry

CACHE_DIR = Path("remote") / "context"
_PERMISSIONS = 0o7777 & ~(stat.S_ISUID | stat.S_ISGID)  # no set-id bits from a client


def parse_digest(text: str) -> Digest:
    """A sha256 digest from the peer; anything else is a RemoteError."""
    try:
        digest = Digest.parse(text)
    except InvalidDigestError as exc:
        raise RemoteError(f"invalid digest from the peer: {text[:100]!r}") from exc
    if digest.algorithm != "sha256":
        raise RemoteError(f"unsupported digest algorithm {digest.algorithm!r}")
    return digest


def checked_path(text: str) -> PurePosixPath:
    """A context path from the client: relative, normalised, without `..` or empty parts."""
    path = PurePosixPath(text)
    if (
        not text
        or path.is_absolute()
        or any(part in ("..", ".", "") for part in text.split("/"))
        or "\0" in text
    ):
        raise RemoteError(f"invalid context path from the client: {text[:200]!r}")
    return path


def check_manifest(entries: Iterable[ContextEntry]) -> None:
    """RemoteError for a manifest the node must not materialise."""
    seen: set[str] = set()
    for entry in entries:
        checked_path(entry.path)
        if entry.path in seen:
            raise RemoteError(f"context path listed twice: {entry.path[:200]!r}")
        seen.add(entry.path)
        kind = stat.S_IFMT(entry.mode)
        if kind == stat.S_IFREG:
            parse_digest(entry.digest)
            if entry.size < 0:
                raise RemoteError(f"negative size for context file {entry.path[:200]!r}")
        elif kind not in (stat.S_IFDIR, stat.S_IFLNK):
            raise RemoteError(f"unsupported context entry type for {entry.path[:200]!r}")


class ContextCache:
    """Context files by digest under a node's data root."""

    def __init__(self, data_root: Path) -> None:
        self.store = ContentStore(data_root / CACHE_DIR, private=True)

    def missing(self, entries: Iterable[ContextEntry]) -> tuple[str, ...]:
        """The digests of regular files the cache lacks, each once, in manifest order."""
        wanted: dict[str, None] = {}
        for entry in entries:
            if (
                stat.S_ISREG(entry.mode)
                and entry.digest not in wanted
                and not self.store.exists(parse_digest(entry.digest))
            ):
                wanted[entry.digest] = None
        return tuple(wanted)

    def writer(self, digest: str, size: int) -> BlobWriter:
        """A verified writer for one file the client sends (commit checks size and digest)."""
        return self.store.writer(parse_digest(digest), size)

    def materialise(self, entries: Iterable[ContextEntry], dest: Path) -> None:
        """Recreate the context under `dest` (an empty directory) from the cache."""
        entries = sorted(entries, key=lambda e: e.path)
        check_manifest(entries)
        directories: list[tuple[Path, int]] = []
        dirs: list[ContextEntry] = []
        for entry in entries:
            target = dest / checked_path(entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if os.path.islink(target.parent) or not target.parent.resolve().is_relative_to(
                dest.resolve()
            ):
                raise RemoteError(f"context path under a symlink: {entry.path[:200]!r}")
            kind = stat.S_IFMT(entry.mode)
            if kind == stat.S_IFDIR:
                target.mkdir(exist_ok=True)
                directories.append((target, entry.mode & _PERMISSIONS))
                dirs.append(entry)
            elif kind == stat.S_IFLNK:
                os.symlink(entry.target, target)
            else:
                shutil.copyfile(self.store.path(parse_digest(entry.digest)), target)
                os.chmod(target, entry.mode & _PERMISSIONS)
        for entry in entries:  # the times last: creating an entry changes its parent's
            if not stat.S_ISDIR(entry.mode):
                times = (entry.mtime_ns, entry.mtime_ns)
                os.utime(dest / entry.path, ns=times, follow_symlinks=False)
        for (directory, mode), entry in reversed(list(zip(directories, dirs, strict=True))):
            os.chmod(directory, mode)  # children first: a 0555 directory last
            os.utime(directory, ns=(entry.mtime_ns, entry.mtime_ns))
