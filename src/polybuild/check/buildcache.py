"""The build cache database: SQLite's own integrity check, then each record's layer blobs."""

from __future__ import annotations

import contextlib
import functools
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.check.inuse import InUse
from polybuild.check.problems import Problem
from polybuild.image.digest import Digest
from polybuild.solver.cache import cache_path, layer_from_record

_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class CacheScan:
    """What is wrong with the build cache, how many records it has, and what they use."""

    problems: list[Problem] = field(default_factory=list)
    records: int = 0
    used: InUse = field(default_factory=InUse)


def check_build_cache(
    root: Path, sizes: Mapping[Digest, int], lost: Mapping[Digest, str]
) -> CacheScan:
    """Check `root`'s cache.db; a record is void when a layer blob it names is not whole."""
    path = cache_path(root)
    if not path.exists():
        return CacheScan()
    try:
        db = sqlite3.connect(path, timeout=30)
    except sqlite3.Error as exc:
        return CacheScan([_broken(path, str(exc))])
    try:
        verdict = [row[0] for row in db.execute("PRAGMA integrity_check").fetchall()]
        if verdict != ["ok"]:
            return CacheScan([_broken(path, "; ".join(str(v) for v in verdict[:3]))])
        try:
            rows = db.execute("SELECT key, layers FROM results ORDER BY key").fetchall()
        except sqlite3.OperationalError:
            rows = []  # no table yet: a cache that never stored anything
    except sqlite3.Error as exc:
        return CacheScan([_broken(path, str(exc))])
    finally:
        db.close()
    scan = CacheScan(records=len(rows))
    for key, data in rows:
        detail = _record_problem(data, sizes, lost, scan)
        if detail is not None:
            scan.problems.append(
                Problem(
                    "cache",
                    f"record {key}",
                    detail,
                    repair=functools.partial(_drop_record, path, key),
                )
            )
    return scan


def _record_problem(
    data: object, sizes: Mapping[Digest, int], lost: Mapping[Digest, str], scan: CacheScan
) -> str | None:
    """Why the record is void, or None when every layer blob it names is whole."""
    try:
        layers = [layer_from_record(item) for item in json.loads(str(data))]
    except (ValueError, TypeError, KeyError) as exc:
        return f"cannot be parsed: {exc}"
    for layer in layers:
        if layer.blob in lost:
            return f"layer blob {layer.blob} {lost[layer.blob]}"
        size = sizes.get(layer.blob)
        if size is None:
            return f"layer blob {layer.blob} is missing"
        if size != layer.descriptor.size:
            return (
                f"layer blob {layer.blob} has {size} bytes, the record says {layer.descriptor.size}"
            )
    scan.used.blobs.update(layer.blob for layer in layers)
    scan.used.diff_ids.update(str(layer.diff_id) for layer in layers)
    scan.used.layers.update((layer.diff_id.hex, layer.blob) for layer in layers)
    return None


def _broken(path: Path, why: str) -> Problem:
    return Problem(
        "cache",
        str(path),
        f"the database is damaged: {why}",
        repair=lambda: _remove_database(path),
    )


def _remove_database(path: Path) -> str:
    # Only a cache: without it the next build runs its steps again and refills it.
    for suffix in ("", *_SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()
    return "removed (the next build runs its steps again)"


def _drop_record(path: Path, key: str) -> str:
    db = sqlite3.connect(path, timeout=30)
    try:
        with db:
            db.execute("DELETE FROM results WHERE key = ?", (key,))
    finally:
        db.close()
    return "dropped"
