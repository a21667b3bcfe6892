"""The build cache: cache key -> layer chain, in SQLite, shared by every build on this machine."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from polybuild.errors import PolybuildError
from polybuild.image import ContentStore, Descriptor, Digest
from polybuild.image.layer import Layer
from polybuild.solver.results import Chain

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    layers TEXT NOT NULL,
    created REAL NOT NULL,
    used REAL NOT NULL
);
"""


def layer_record(layer: Layer) -> dict[str, object]:
    """A layer as the cache stores it (one JSON object per layer of a chain)."""
    return {
        "blob": str(layer.blob),
        "diff_id": str(layer.diff_id),
        "size": layer.descriptor.size,
        "media_type": layer.descriptor.media_type,
    }


def layer_from_record(data: dict[str, object]) -> Layer:
    """The layer a cache record names (KeyError, ValueError or ImageError when malformed)."""
    blob = Descriptor(
        str(data["media_type"]), Digest.parse(str(data["blob"])), int(str(data["size"]))
    )
    return Layer(blob, Digest.parse(str(data["diff_id"])))


class CacheStore:
    """Maps cache keys to the layer chains they produced; entries whose blobs are gone are void.

    Only keys and layer digests are stored: never file contents, environment values or
    secrets (secrets are not part of any key).
    """

    def __init__(self, path: Path, content: ContentStore) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Private, and SQLite gives its -wal and -shm files the database file's mode.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self.content = content
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, timeout=30, isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise PolybuildError(
                f"the build cache {path} is damaged: {exc}",
                hint="polybuild check --repair removes it (the next build runs its steps again)",
            ) from exc

    def get(self, key: str) -> Chain | None:
        with self._lock:
            row = self._db.execute("SELECT layers FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        layers = tuple(layer_from_record(item) for item in json.loads(row[0]))
        if not all(self.content.exists(layer.blob) for layer in layers):
            return None  # a blob was garbage-collected: the entry can no longer be used
        with self._lock:
            self._db.execute("UPDATE results SET used = ? WHERE key = ?", (time.time(), key))
        return Chain(layers, key, cached=True)

    def put(self, chain: Chain) -> None:
        data = json.dumps([layer_record(layer) for layer in chain.layers], sort_keys=True)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO results (key, layers, created, used) VALUES (?, ?, ?, ?)",
                (chain.key, data, now, now),
            )

    def blobs(self) -> set[str]:
        """Every blob digest the cache refers to (kept by garbage collection)."""
        with self._lock:
            rows = self._db.execute("SELECT layers FROM results").fetchall()
        return {item["blob"] for (data,) in rows for item in json.loads(data)}

    def clear(self) -> int:
        with self._lock:
            return self._db.execute("DELETE FROM results").rowcount

    def entries(self) -> list[tuple[str, float, tuple[str, ...]]]:
        """(key, last used, layer blob digests) of every record, least recently used first."""
        with self._lock:
            query = "SELECT key, used, layers FROM results ORDER BY used"
            rows = self._db.execute(query).fetchall()
        return [(key, used, tuple(i["blob"] for i in json.loads(data))) for key, used, data in rows]

    def diff_ids(self) -> set[str]:
        """The uncompressed digests of every layer the records refer to."""
        with self._lock:
            rows = self._db.execute("SELECT layers FROM results").fetchall()
        return {str(item["diff_id"]) for (data,) in rows for item in json.loads(data)}

    def delete(self, keys: list[str]) -> int:
        with self._lock:
            return sum(
                self._db.execute("DELETE FROM results WHERE key = ?", (key,)).rowcount
                for key in keys
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def cache_path(root: Path) -> Path:
    """Where a data root keeps its build cache."""
    return root / "cache" / "cache.db"


def cached_blobs(root: Path) -> set[Digest]:
    """Layer blobs the build cache of data root `root` refers to (kept by image removal)."""
    path = cache_path(root)
    if not path.exists():
        return set()
    db = sqlite3.connect(path, timeout=30)
    try:
        rows = db.execute("SELECT layers FROM results").fetchall()
    except sqlite3.Error:
        return set()
    finally:
        db.close()
    return {Digest.parse(item["blob"]) for (data,) in rows for item in json.loads(data)}
