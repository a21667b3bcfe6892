"""A worker for unit tests of the solver: no root, no runc, no overlayfs.

`FakeExecutor` runs a Python function in place of a container (it gets the root directory
and the process, and returns the exit code); `FakeWorker` pairs it with the copy-mode
snapshotter and the real layer and content stores, all under one temporary directory. The
solver cannot tell it from `polybuild.runtime.Runtime`: both are `solver.worker.Worker`s.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO, cast

from polybuild.executor import ExitStatus, Process
from polybuild.executor.runc import Stream
from polybuild.graph import ops
from polybuild.image.content import ContentStore
from polybuild.image.digest import Digest
from polybuild.snapshot import LayerStore, Snapshotter
from polybuild.solver.fileop import DockerfileFileOps

# (root directory of the container, process) -> (exit code, output)
Script = Callable[[Path, Process], tuple[int, bytes]]


def _succeed(rootfs: Path, process: Process) -> tuple[int, bytes]:
    return 0, b""


class FakeExecutor:
    """Runs `script` instead of a container and records every process it was given."""

    def __init__(self, script: Script = _succeed) -> None:
        self.script = script
        self.processes: list[Process] = []
        self.kills = 0

    def run(
        self,
        rootfs: Path,
        process: Process,
        *,
        stdin: Stream = None,
        stdout: Stream = None,
        stderr: Stream = None,
    ) -> ExitStatus:
        self.processes.append(process)
        code, output = self.script(rootfs, process)
        if isinstance(stdout, int) and output:
            os.write(stdout, output)
        return ExitStatus(code)

    def kill_all(self) -> None:
        self.kills += 1


class FakeFileOps:
    """COPY and WORKDIR as plain file copies owned by the caller (no chown, so no root):
    the real context checksums, so cache keys behave as in a build."""

    def __init__(self) -> None:
        self.checksums = DockerfileFileOps()

    def checksum(self, context: Path, op: ops.Copy, ignore: tuple[str, ...]) -> str:
        return self.checksums.checksum(context, op, ignore)

    def paths_checksum(self, context: Path, paths: Sequence[str], ignore: tuple[str, ...]) -> str:
        return self.checksums.paths_checksum(context, paths, ignore)

    def url_digest(self, url: str, instruction: str) -> str:
        raise AssertionError(f"{instruction}: FakeFileOps fetches no URL")

    def hidden_paths(self, context: Path, ignore: tuple[str, ...]) -> tuple[str, ...]:
        return self.checksums.hidden_paths(context, ignore)

    def copy(
        self, op: ops.Copy, source_root: Path | None, dest_root: Path, ignore: tuple[str, ...]
    ) -> None:
        assert source_root is not None
        dest = dest_root / op.dest.strip("/")
        dest.mkdir(parents=True, exist_ok=True)
        for name in op.sources:
            shutil.copy2(source_root / name, dest / Path(name).name)

    def mkdir(self, op: ops.Mkdir, dest_root: Path) -> None:
        (dest_root / op.path.strip("/")).mkdir(parents=True, exist_ok=True)


class FakeWorker:
    """A worker under `root`: FakeExecutor, copy-mode snapshots, real layer/blob stores."""

    def __init__(self, root: Path, executor: FakeExecutor | None = None) -> None:
        self.root = root
        self.executor = executor or FakeExecutor()
        self.snapshots = Snapshotter(root / "snapshots", overlay=False)
        self.layers = LayerStore(root / "layers")
        self.content = ContentStore(root / "blobs")

    def unpacked(self, layers: Sequence[tuple[Digest, Digest]]) -> list[Path]:
        return [self.layers.ensure(str(diff_id), self._opener(blob)) for blob, diff_id in layers]

    def _opener(self, digest: Digest) -> Callable[[], BinaryIO]:
        return lambda: cast(BinaryIO, self.content.open(digest))

    def adopt(self, diff_id: Digest, upper: Path) -> None:
        self.layers.adopt(str(diff_id), upper)


__all__ = ["FakeExecutor", "FakeFileOps", "FakeWorker", "Script"]
