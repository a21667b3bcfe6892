"""Attestations beside a platform's files in a `local` or `tar` export, as BuildKit's local
exporter writes them: each an in-toto statement (indented JSON, mode 0600) named after its
attestation (`provenance.json`, `sbom.spdx.json`) whose subjects are every regular file of
that platform's export with its SHA-256, paths relative and in walk order."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from polybuild.attest.intoto import Subject, statement
from polybuild.errors import ImageError, UsageError
from polybuild.image.digest import Digest
from polybuild.image.platform_image import Predicate

_CHUNK = 1 << 20


def _files(root: Path) -> Iterator[tuple[str, str]]:
    """(relative path, absolute path) of every regular file under `root`; never follows a
    link (an iterative walk: no depth limit but the file system's)."""
    stack = [("", str(root))]
    while stack:
        rel, host = stack.pop()
        with os.scandir(host) as it:
            entries = list(it)
        for entry in entries:
            child = f"{rel}/{entry.name}" if rel else entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((child, entry.path))
            elif entry.is_file(follow_symlinks=False):
                yield child, entry.path


def _walk_sorted(root: Path) -> list[tuple[str, str]]:
    """The files in fsutil's Walk order: by path, one component at a time."""
    return sorted(_files(root), key=lambda item: item[0].split("/"))


def _sha256(path: str) -> Digest:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return Digest("sha256", digest.hexdigest())


def write_attestation_files(
    target: Path, predicates: Sequence[Predicate], mtime: float | None = None
) -> None:
    """Write `predicates` (one platform's) as statement files into `target`, its export."""
    if not predicates:
        return
    subjects = tuple(Subject.of(rel, _sha256(path)) for rel, path in _walk_sorted(target))
    names: set[str] = set()
    for predicate in predicates:
        name = os.path.basename(predicate.filename) or "attestation.json"
        if name in names:
            raise UsageError(f"duplicate attestation path name {name}")
        names.add(name)
        path = target / name
        if path.is_dir() and not path.is_symlink():
            raise ImageError(f"the export has a directory {name} where its attestation goes")
        if path.is_symlink() or path.exists():
            path.unlink()  # an image's own file of that name gives way, as in BuildKit's merge
        data = statement(predicate.predicate_type, predicate.body, subjects).to_json_indent()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime), follow_symlinks=False)


__all__ = ["write_attestation_files"]
