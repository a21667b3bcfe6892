"""Re-hash every blob of the content store; a corrupt one is removed only if it is still there."""

from __future__ import annotations

import functools
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.check.leftovers import remove_path
from polybuild.check.problems import Problem
from polybuild.image.content import ContentStore
from polybuild.image.digest import ALGORITHMS, Digest, Digester, InvalidDigestError

_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class BlobScan:
    """Sizes of the blobs that hashed right, the corrupt ones, and what is wrong."""

    sizes: dict[Digest, int] = field(default_factory=dict)
    corrupt: set[Digest] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)


def scan_blobs(content: ContentStore) -> BlobScan:
    """Hash every committed blob (a digest mismatch is corruption); flag names that are not
    digests, which nothing ever writes into blobs/."""
    scan = BlobScan()
    for algorithm in sorted(ALGORITHMS):
        directory = content.blobs_dir / algorithm
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            continue
        for entry in entries:
            path = Path(entry.path)
            try:
                digest = Digest(algorithm, entry.name)
            except InvalidDigestError:
                scan.problems.append(
                    Problem(
                        "leftover",
                        str(path),
                        "not a blob (its name is not a digest)",
                        repair=functools.partial(remove_path, path),
                    )
                )
                continue
            _verify(content, digest, path, scan)
    return scan


def _verify(content: ContentStore, digest: Digest, path: Path, scan: BlobScan) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return  # removed meanwhile (rmi or prune in another process)
    except OSError as exc:
        scan.problems.append(Problem("blob", str(digest), f"cannot be read: {exc.strerror}"))
        return
    try:
        st = os.fstat(fd)
        digester = Digester(digest.algorithm)
        while chunk := os.read(fd, _CHUNK):
            digester.update(chunk)
    except OSError as exc:
        scan.problems.append(Problem("blob", str(digest), f"cannot be read: {exc.strerror}"))
        return
    finally:
        os.close(fd)
    actual = digester.digest()
    if actual == digest and digester.size == st.st_size:
        scan.sizes[digest] = digester.size
        return
    scan.corrupt.add(digest)
    identity = (st.st_ino, st.st_mtime_ns)
    scan.problems.append(
        Problem(
            "blob",
            str(digest),
            f"corrupt: its {digester.size} bytes hash to {actual} ({path})",
            repair=lambda: _remove_corrupt(content, path, identity),
        )
    )


def _remove_corrupt(content: ContentStore, path: Path, identity: tuple[int, int]) -> str:
    """Remove the blob file that was hashed, and only that one.

    A pull or load may commit a good copy of the same blob meanwhile (by rename, which
    replaces the corrupt file): the file is moved aside first and put back if it is not the
    one that was hashed. The aside name is a `.partial` in ingest/, which gc_temp() removes
    should this process die in between.
    """
    content.ingest_dir.mkdir(parents=True, exist_ok=True)
    aside = content.ingest_dir / f"{os.getpid()}-corrupt-{secrets.token_hex(4)}.partial"
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return "already gone"
    st = os.lstat(aside)
    if (st.st_ino, st.st_mtime_ns) != identity:
        os.rename(aside, path)
        return "kept: a verified copy was written meanwhile"
    os.unlink(aside)
    return "removed"
