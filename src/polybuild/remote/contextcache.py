"""The node's content-addressed cache of build-context files, and the checks of a client's
context manifest.

Files are kept by sha256 under `<data root>/remote/context` (the content store's layout:
written atomically, verified on write), so a file the node has seen before is never sent
again, whichever path or build it belongs to. The client's manifest is checked before
anything is created (`check_manifest`): paths stay inside the directory, only directories,
regular files and symlinks exist, and nothing is listed under a file or a symlink.
`context_tree` makes a directory hold the manifest from this cache.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from polybuild.errors import RemoteError
from polybuild.image.content import BlobWriter, ContentStore
from polybuild.image.digest import Digest, InvalidDigestError
from polybuild.remote.messages import ContextEntry

CACHE_DIR = Path("remote") / "context"
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")


def parse_digest(text: str) -> Digest:
    """A sha256 digest from the peer; anything else is a RemoteError."""
    try:
        digest = Digest.parse(text)
    except InvalidDigestError as exc:
        raise RemoteError(f"invalid digest from the peer: {text[:100]!r}") from exc
    if digest.algorithm != "sha256":
        raise RemoteError(f"unsupported digest algorithm {digest.algorithm!r}")
    return digest


def _valid_path(text: str) -> bool:
    return (
        bool(text)
        and text[0] != "/"
        and "\0" not in text
        and not any(part in ("..", ".", "") for part in text.split("/"))
    )


def checked_path(text: str) -> PurePosixPath:
    """A context path from the client: relative, normalised, without `..` or empty parts."""
    if not _valid_path(text):
        raise RemoteError(f"invalid context path from the client: {text[:200]!r}")
    return PurePosixPath(text)


def checked_digest(text: str) -> str:
    """A file digest from the client, `sha256:<64 lowercase hex>` (else a RemoteError)."""
    if _SHA256.fullmatch(text) is None:  # checked without building a Digest: warm builds
        parse_digest(text)  # check thousands
        raise RemoteError(f"unsupported digest from the peer: {text[:100]!r}")
    return text


def check_manifest(entries: Iterable[ContextEntry]) -> None:
    """RemoteError for a manifest the node must not materialise."""
    kinds: dict[str, int] = {}
    for entry in entries:
        path = entry.path
        if not _valid_path(path):
            checked_path(path)  # raises
        if path in kinds:
            raise RemoteError(f"context path listed twice: {path[:200]!r}")
        kind = stat.S_IFMT(entry.mode)
        kinds[path] = kind
        if kind == stat.S_IFREG:
            checked_digest(entry.digest)
            if entry.size < 0:
                raise RemoteError(f"negative size for context file {path[:200]!r}")
        elif kind not in (stat.S_IFDIR, stat.S_IFLNK):
            raise RemoteError(f"unsupported context entry type for {path[:200]!r}")
    for path in kinds:
        end = path.find("/")
        while end != -1:
            if kinds.get(path[:end], stat.S_IFDIR) != stat.S_IFDIR:
                raise RemoteError(f"context path under a symlink or a file: {path[:200]!r}")
            end = path.find("/", end + 1)


class ContextCache:
    """Context files by digest under a node's data root."""

    def __init__(self, data_root: Path) -> None:
        self.store = ContentStore(data_root / CACHE_DIR, private=True)
        self._files = os.fspath(self.store.blobs_dir / "sha256")  # the store's layout

    def file(self, digest: str) -> str:
        """Where the cache keeps the file `digest` (whether or not it has it)."""
        return os.path.join(self._files, checked_digest(digest).removeprefix("sha256:"))

    def missing(self, entries: Iterable[ContextEntry]) -> tuple[str, ...]:
        """The digests of regular files the cache lacks, each once, in manifest order."""
        digests = dict.fromkeys(e.digest for e in entries if stat.S_ISREG(e.mode))
        return tuple(d for d in digests if not os.path.isfile(self.file(d)))

    def writer(self, digest: str, size: int) -> BlobWriter:
        """A verified writer for one file the client sends (commit checks size and digest)."""
        return self.store.writer(parse_digest(digest), size)
