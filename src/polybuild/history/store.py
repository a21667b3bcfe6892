"""`<data root>/history/`: one private JSON file per build record, written atomically,
at most `limit` records kept (BuildKit's history keeps 50 by default)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from polybuild.dataroot import make_private
from polybuild.errors import PolybuildError, UsageError
from polybuild.history.record import BuildRecord, decode, encode

MAX_ENTRIES = 50  # BuildKit's [history] maxEntries default
_STALE_TEMP_SECONDS = 3600
_REF = re.compile(r"^[0-9a-z]{25}$")
_OFFSET = re.compile(r"^\^(\d+)$")

Warn = Callable[[str], None]


def _ignore(message: str) -> None:
    pass


class HistoryStore:
    """The build records of one data root, newest first when listed."""

    def __init__(self, root: Path, *, limit: int = MAX_ENTRIES, warn: Warn = _ignore) -> None:
        self.directory = root / "history"
        self.limit = limit
        self.warn = warn

    def _path(self, ref: str) -> Path:
        return self.directory / f"{ref}.json"

    def save(self, record: BuildRecord) -> None:
        """Write `record` (temp file, fsync, rename; 0600 in a 0700 directory), then drop
        the oldest records beyond the limit."""
        if not self.directory.parent.exists():
            make_private(self.directory.parent)  # the data root, as its stores make it
        self.directory.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.directory, 0o700)
        fd, temp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:  # mkstemp makes it 0600
                f.write(encode(record))
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self._path(record.ref))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self.prune(self.limit)
        self._remove_stale_temps(time.time() - _STALE_TEMP_SECONDS)

    def _remove_stale_temps(self, before: float) -> None:
        """Temp files a killed build left (a record is written in well under a second)."""
        with contextlib.suppress(OSError):
            for path in self.directory.glob(".tmp-*"):
                with contextlib.suppress(OSError):
                    if path.lstat().st_mtime < before:
                        path.unlink()

    def records(self) -> list[BuildRecord]:
        """Every readable record, newest first; a corrupt one is skipped with a warning."""
        found: list[BuildRecord] = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            if not _REF.match(path.stem):
                continue
            try:
                found.append(decode(path.read_bytes()))
            except (OSError, ValueError) as exc:
                self.warn(f"skipping the unreadable build record {path}: {exc}")
        found.sort(key=lambda r: (r.started, r.ref), reverse=True)
        return found

    def find(self, ref: str) -> BuildRecord:
        """A record by ref, unique prefix of a ref, or `^N` (0 is the latest); "" is the
        latest. PolybuildError (exit 1) in buildx's words when there is none; UsageError
        for a malformed offset or an ambiguous prefix."""
        records = self.records()
        if not ref:
            if not records:
                raise PolybuildError("no records found")
            return records[0]
        offset = _OFFSET.match(ref)
        if offset is not None:
            index = int(offset.group(1))
            if index > len(records):  # buildx counts what its offset had left
                raise PolybuildError(f"no completed build found with offset {index - len(records)}")
            if index == len(records):
                raise PolybuildError(f'no record found for ref "{ref}"')
            return records[index]
        if ref.startswith("^"):
            raise UsageError(f'invalid offset "{ref}"')
        matches = [r for r in records if r.ref == ref] or [
            r for r in records if r.ref.startswith(ref)
        ]
        if len(matches) != 1:
            if matches:
                raise UsageError(f'ref "{ref}" matches {len(matches)} records', hint="give more")
            raise PolybuildError(f'no record found for ref "{ref}"')
        return matches[0]

    def remove(self, refs: Sequence[str]) -> list[str]:
        """Remove the records `refs` name (as `find` reads them); the refs removed."""
        chosen = [self.find(ref).ref for ref in refs]
        for ref in chosen:
            with contextlib.suppress(FileNotFoundError):
                self._path(ref).unlink()
        return chosen

    def clear(self) -> list[str]:
        """Remove every record (corrupt ones too); the refs removed."""
        removed = []
        with contextlib.suppress(OSError):
            for path in self.directory.glob("*.json"):
                if _REF.match(path.stem):
                    path.unlink(missing_ok=True)
                    removed.append(path.stem)
        return removed

    def prune(self, keep: int) -> list[str]:
        """Keep the newest `keep` records; the refs removed (nothing is read while there are
        no more than `keep`: a build's save stays cheap however many records there are)."""
        removed: list[str] = []
        with contextlib.suppress(OSError):
            count = sum(1 for p in self.directory.glob("*.json") if _REF.match(p.stem))
            if count <= keep:
                return removed
        for record in self.records()[keep:]:
            self._path(record.ref).unlink(missing_ok=True)
            removed.append(record.ref)
        return removed


__all__ = ["MAX_ENTRIES", "HistoryStore"]
