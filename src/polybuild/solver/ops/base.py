"""The op-handler seam: one handler per op kind, each knowing its cache key and its run.

Two kinds, as BuildKit's `solver/llbsolver/ops`: a *direct* handler gives its result
without running anything (sources, merges); a *layer* handler changes a writable snapshot
of its first input, which the solver then commits as one new layer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from polybuild.graph import ops
from polybuild.graph.ops import canonical_json
from polybuild.platforms import Platform
from polybuild.progress.writer import VertexHandle
from polybuild.snapshot import Snapshot
from polybuild.solver.options import BaseImage, FileOps, SolveOptions
from polybuild.solver.results import Chain, Result, Tree
from polybuild.solver.worker import Worker


def key_of(kind: str, definition: Any, inputs: Sequence[str], extra: Any = None) -> str:
    """A cache key: the op's kind and definition, its inputs' keys and what else it reads."""
    payload = {"kind": kind, "def": definition, "inputs": list(inputs), "extra": extra}
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(frozen=True, slots=True)
class OpContext:
    """What every handler may use: the worker and the solve's inputs."""

    worker: Worker
    options: SolveOptions
    base_images: Mapping[tuple[str, Platform], BaseImage]
    file_ops: FileOps


@dataclass(slots=True)
class Held:
    """The snapshots one step holds (its root and its mounts' trees), released together."""

    worker: Worker
    snapshots: list[Snapshot] = field(default_factory=list)

    def prepare(self, lowers: Sequence[Path], *, hide: Sequence[str] = ()) -> Snapshot:
        snapshot = self.worker.snapshots.prepare(lowers, hide=hide)
        self.snapshots.append(snapshot)
        return snapshot

    def lowers(self, chain: Chain) -> list[Path]:
        return self.worker.unpacked([(layer.blob, layer.diff_id) for layer in chain.layers])

    def tree(self, result: Result) -> Path:
        """A directory holding `result`'s files (a chain gets its own snapshot)."""
        if isinstance(result, Tree):
            return result.path
        return self.prepare(self.lowers(result)).rootfs

    def release(self) -> None:
        for snapshot in reversed(self.snapshots):
            self.worker.snapshots.release(snapshot)
        self.snapshots.clear()


@dataclass(frozen=True, slots=True)
class Step:
    """One layer step being run: its writable root, the snapshots it holds, where its
    output goes, its display name and a private scratch directory."""

    snapshot: Snapshot
    held: Held
    vertex: VertexHandle
    name: str
    scratch: Path


class DirectHandler(Protocol):
    """An op whose result needs no container and no snapshot."""

    def result(self, op: Any, inputs: Sequence[Result], context: OpContext) -> Result: ...


class LayerHandler(Protocol):
    """An op that changes its first input's filesystem into one new layer."""

    async def extra_key(self, op: Any, context: OpContext) -> Any:
        """What the cache key needs beyond the definitions (e.g. checksums of files read)."""

    def apply(self, op: Any, inputs: Sequence[Result], step: Step, context: OpContext) -> None:
        """Change `step.snapshot` (runs in a worker thread)."""


def direct_key(op: ops.Op, inputs: Sequence[Result]) -> str:
    return key_of(op.kind, op.definition(), [r.key for r in inputs])


__all__ = [
    "DirectHandler",
    "Held",
    "LayerHandler",
    "OpContext",
    "Step",
    "direct_key",
    "key_of",
]
