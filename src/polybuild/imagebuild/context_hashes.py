"""The client's remembered sha256 of its context files, so a warm build to a remote node
stats its context instead of reading it all again.

One file per context under `<data root>/remote/context-hashes/<sha256 of the context's
path>`, each line `dev ino size mtime_ns ctime_ns sha256 path`; a file's digest is used
again only while all five numbers are unchanged (the ctime changes with any write, chmod
or rename, and user space cannot set it). Git's "racy" rule: a digest is never kept for a
file changed within RACY_SECONDS of being hashed, since a second write in the same clock
tick could leave its times as they were. Losing or damaging the file only costs time.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from polybuild.image.content import write_file_atomic

HASHES_DIR = Path("remote") / "context-hashes"
RACY_SECONDS = 2
_CHUNK = 1 << 20

_Key = tuple[int, int, int, int, int]  # dev, inode, size, mtime_ns, ctime_ns


def _key(st: os.stat_result) -> _Key:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class ContextHashes:
    """The digests of one context's files: `digest(path)` uses a remembered one while the
    file is unchanged; `save()` keeps those of this build's files for the next one."""

    def __init__(self, data_root: Path | None, context: Path) -> None:
        self._file: Path | None = None
        if data_root is not None:
            name = hashlib.sha256(os.fsencode(context.resolve())).hexdigest()[:32]
            self._file = data_root / HASHES_DIR / name
        self._known: dict[str, tuple[_Key, str]] = self._load()
        self._seen: dict[str, tuple[_Key, str]] = {}

    def _load(self) -> dict[str, tuple[_Key, str]]:
        if self._file is None:
            return {}
        try:
            lines = self._file.read_bytes().split(b"\n")
        except OSError:
            return {}
        known: dict[str, tuple[_Key, str]] = {}
        for line in lines:
            parts = line.split(b" ", 6)
            if len(parts) != 7 or not all(p.isdigit() for p in parts[:5]):
                continue
            dev, ino, size, mtime, ctime = (int(p) for p in parts[:5])
            known[os.fsdecode(parts[6])] = ((dev, ino, size, mtime, ctime), parts[5].decode())
        return known

    def digest(self, path: Path, rel: str, st: os.stat_result) -> str:
        """`sha256:<hex>` of the regular file `path` whose lstat is `st` (read unless it is
        known unchanged)."""
        known = self._known.get(rel)
        if known is not None and known[0] == _key(st):
            self._seen[rel] = known
            return known[1]
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            before = os.fstat(fd)
            sha = hashlib.sha256()
            while chunk := os.read(fd, _CHUNK):
                sha.update(chunk)
            after = os.fstat(fd)
        finally:
            os.close(fd)
        value = "sha256:" + sha.hexdigest()
        racy = max(after.st_mtime_ns, after.st_ctime_ns) >= time.time_ns() - RACY_SECONDS * 10**9
        if _key(st) == _key(before) == _key(after) and not racy:
            self._seen[rel] = (_key(after), value)
        return value

    def save(self) -> None:
        """Keep the digests of this build's files (only theirs: removed files go)."""
        if self._file is None or self._seen == self._known:
            return
        lines = [
            b"%d %d %d %d %d %s %s" % (*key, value.encode(), os.fsencode(rel))
            for rel, (key, value) in self._seen.items()
            if "\n" not in rel
        ]
        self._file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_file_atomic(self._file, b"\n".join(lines) + b"\n")
