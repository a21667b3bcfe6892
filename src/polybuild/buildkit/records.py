"""What a BuildKit daemon says of itself (Info, ListWorkers), as polybuild's frozen values."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.platforms import Platform


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    """The daemon's build: `version` is its tag (v0.32.2), `revision` the commit it was built
    from, `package` its Go module (github.com/moby/buildkit)."""

    package: str
    version: str
    revision: str


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """One worker of the daemon: the platforms it builds (normalised, in the daemon's order,
    native first) and its labels (`org.mobyproject.buildkit.worker.*`), sorted by key."""

    id: str
    platforms: tuple[Platform, ...]
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, key: str) -> str | None:
        return next((value for name, value in self.labels if name == key), None)


@dataclass(frozen=True, slots=True)
class CacheRecord:
    """One record of the daemon's build cache (DiskUsage, or one that Prune removed)."""

    id: str
    size: int
    in_use: bool
    mutable: bool
    shared: bool
    description: str
    record_type: str
    last_used: float | None  # seconds since the epoch
    created_at: float | None = None  # seconds since the epoch
    parents: tuple[str, ...] = ()
    usage_count: int = 0

    @property
    def reclaimable(self) -> bool:
        return not self.in_use


__all__ = ["CacheRecord", "DaemonInfo", "WorkerInfo"]
