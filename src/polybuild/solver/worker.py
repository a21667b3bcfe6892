"""The worker seam: what the solver needs from the machine that runs a build's steps.

A worker runs containers (`Executor`), stacks and captures filesystems (`Snapshotter`),
keeps layers unpacked once (`unpacked`, `adopt`) and stores blobs (`ContentStore`), all
under one data root. `polybuild.runtime.Runtime` is the local worker; tests use the fakes in
`polybuild.testing`. The solver never names a concrete class behind these Protocols.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from polybuild.executor import ExitStatus, Process
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.layers.layer import DEFAULT_FORMAT, LayerFormat
from polybuild.snapshot import Snapshot

if TYPE_CHECKING:
    from polybuild.executor.runc import Stream


class Executor(Protocol):
    """Runs one process in a container whose root filesystem is `rootfs`."""

    def run(
        self,
        rootfs: Path,
        process: Process,
        *,
        stdin: Stream = None,
        stdout: Stream = None,
        stderr: Stream = None,
    ) -> ExitStatus: ...

    def kill_all(self) -> None:
        """Kill every container this executor started that is still running."""


class Snapshotter(Protocol):
    """Writable roots over read-only lower directories, and the layer of what changed."""

    def prepare(self, lowers: Sequence[Path], *, hide: Sequence[str] = ()) -> Snapshot: ...

    def commit(
        self, snapshot: Snapshot, out: BinaryIO, layer_format: LayerFormat = DEFAULT_FORMAT
    ) -> Layer: ...

    def release(self, snapshot: Snapshot) -> None: ...


class BlobSink(Protocol):
    """A blob being written; it is stored under its digest when its block ends."""

    def write(self, data: bytes | bytearray | memoryview) -> int: ...


class ContentStore(Protocol):
    """Blobs by digest, verified on every write and read (image.content.ContentStore)."""

    def writer(self) -> AbstractContextManager[BlobSink]: ...

    def exists(self, digest: Digest) -> bool: ...

    def get(self, digest: Digest) -> bytes: ...

    def put(self, data: bytes, expected: Digest | None = None) -> Digest: ...


class Worker(Protocol):
    """One machine's build machinery under its data root `root`."""

    @property
    def root(self) -> Path: ...

    @property
    def executor(self) -> Executor: ...

    @property
    def snapshots(self) -> Snapshotter: ...

    def unpacked(self, layers: Sequence[tuple[Digest, Digest]]) -> list[Path]:
        """Each (blob, diff-id) layer unpacked once, bottom first, to stack as lowers."""

    def adopt(self, diff_id: Digest, upper: Path) -> None:
        """Keep a committed snapshot's upper directory as that layer unpacked."""


__all__ = ["BlobSink", "ContentStore", "Executor", "Snapshotter", "Worker"]
