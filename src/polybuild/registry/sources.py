"""Which repositories of which registries are known to hold a blob, so a push can mount it
from there instead of uploading it again (Docker keeps the same record)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from polybuild.errors import InvalidReferenceError
from polybuild.image.digest import Digest
from polybuild.image.reference import Reference, parse

# Only the most recent sources are worth trying; a mount attempt costs a request.
MAX_SOURCES = 5


class BlobSources:
    """One small file per blob under `root`, holding `domain/path` lines, newest last.

    Lines are appended with O_APPEND, one write each, so concurrent writers never mix a
    line; a lost or stale record only costs an upload, never correctness.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, digest: Digest) -> Path:
        return self.root / digest.algorithm / digest.hex

    def add(self, digest: Digest, repository: Reference) -> None:
        """Remember that `repository` holds the blob."""
        line = f"{repository.name}\n".encode()
        path = self._path(digest)
        with contextlib.suppress(OSError):  # a cache: failing to record is harmless
            if repository.name in self._names(path):
                return
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def get(self, digest: Digest, domain: str) -> list[Reference]:
        """Repositories on registry `domain` known to hold the blob, newest first."""
        found: list[Reference] = []
        for name in reversed(self._names(self._path(digest))):
            try:
                ref = parse(name, default_tag=False)
            except InvalidReferenceError:  # a corrupt line is skipped, not fatal
                continue
            if ref.domain == domain and ref not in found:
                found.append(ref)
        return found[:MAX_SOURCES]

    @staticmethod
    def _names(path: Path) -> list[str]:
        try:
            return [line for line in path.read_text().splitlines() if line]
        except (OSError, UnicodeDecodeError):
            return []
