"""What a solve is given: its options, the resolved base images and the file operations."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from polybuild.errors import PolybuildError
from polybuild.graph import ops
from polybuild.graph.devices import DeviceGrants
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.layers.layer import LayerFormat
from polybuild.solver.secrets import BuildSecrets


def default_jobs() -> int:
    """Steps at once when `--jobs` is not given: the CPUs. Twice as many started a short
    RUN of a third platform sooner (30 ms on the seed's build) but made emulated steps,
    which are CPU-bound, slower together (11.8 s against 11.1 s for three platforms here)."""
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True)
class SolveOptions:
    """How to solve: caching, parallelism, layer format and the build's private inputs."""

    context_dir: Path
    ignore_patterns: tuple[str, ...] = ()
    # --build-context directories by their LocalSource's name (their excludes are the op's)
    named_dirs: Mapping[str, Path] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_ops: frozenset[str] = frozenset()  # op digests that must not use the cache
    jobs: int = field(default_factory=default_jobs)
    source_date_epoch: int | None = None  # clamps new files' mtimes (and the layers')
    secrets: BuildSecrets = field(default_factory=BuildSecrets)
    network: str = "default"  # --network: the mode of RUN steps that do not choose one
    extra_hosts: tuple[tuple[str, str], ...] = ()  # --add-host: (host, ip) in /etc/hosts
    ulimits: tuple[tuple[str, int, int], ...] = ()  # --ulimit: (name, soft, hard)
    shm_size: int | None = None  # --shm-size in bytes
    devices: DeviceGrants = field(default_factory=DeviceGrants)  # --allow device[=NAME]

    def local_dir(self, op: ops.LocalSource) -> tuple[Path, tuple[str, ...]]:
        """The directory a LocalSource reads and the patterns it excludes: a named
        directory, else the build context."""
        named = self.named_dirs.get(op.name)
        if named is not None:
            return named, op.exclude
        if op.name != "context":
            raise PolybuildError(f"the build has no directory for the source {op.name!r}")
        return self.context_dir, self.ignore_patterns

    @property
    def layer_format(self) -> LayerFormat:
        """How the solve writes layers (the build's layers: gzip, OCI; exporters convert)."""
        return LayerFormat(source_date_epoch=self.source_date_epoch)


@dataclass(frozen=True, slots=True)
class BaseImage:
    """A resolved base image for one platform: its layers and manifest digest."""

    layers: tuple[Layer, ...]
    manifest: Digest


class ImportedCache(Protocol):
    """Records of imported build caches (`--cache-from`), their layers fetched on demand."""

    def lookup(self, key: str) -> tuple[Layer, ...] | None:
        """The layer chain a step with this cache key produced elsewhere, if known."""

    async def materialize(self, layers: Sequence[Layer], content: Any) -> None:
        """Fetch the layers `content` lacks; CacheBlobError when one cannot be had."""


class FileOps(Protocol):
    """COPY/ADD/WORKDIR semantics, applied to a writable root, and what the cache keys of
    steps that read the context or a URL need (see solver.fileop)."""

    def checksum(self, context: Path, op: ops.Copy, ignore: tuple[str, ...]) -> str:
        """The content checksum of the context files a COPY reads."""

    def paths_checksum(self, context: Path, paths: Sequence[str], ignore: tuple[str, ...]) -> str:
        """The content checksum of context paths (what a RUN bind mount of the context sees)."""

    def url_digest(self, url: str, instruction: str) -> str:
        """`sha256:` of what `url` serves now (ADD <url> without --checksum)."""

    def hidden_paths(self, context: Path, ignore: tuple[str, ...]) -> tuple[str, ...]:
        """The top-most context entries .dockerignore leaves out."""

    def copy(
        self, op: ops.Copy, source_root: Path | None, dest_root: Path, ignore: tuple[str, ...]
    ) -> None: ...

    def mkdir(self, op: ops.Mkdir, dest_root: Path) -> None: ...


__all__ = ["BaseImage", "FileOps", "ImportedCache", "SolveOptions"]
