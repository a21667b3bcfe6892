"""The solver: runs the build graphs of every target platform together, each op at most once.

Ops are memoised by digest, so work that does not depend on the target platform (a
`FROM --platform=$BUILDPLATFORM` stage) runs once for all targets. Independent ops run in
parallel up to `jobs`; the first failure cancels the rest and kills running containers.
Results are cached by key (op definition + input keys + content checksums) in SQLite and
reused across builds.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from polybuild.errors import DockerfileError, PolybuildError
from polybuild.graph import ops
from polybuild.graph.ops import canonical_json
from polybuild.image import Digest, ImageStore
from polybuild.image.layer import Layer as LayerRef  # to be renamed Layer in the signatures
from polybuild.layers import Compression
from polybuild.platforms import Platform, host_platform
from polybuild.progress.writer import NullProgress, ProgressWriter, VertexHandle
from polybuild.runtime import Runtime
from polybuild.snapshot import Snapshot
from polybuild.solver import execop
from polybuild.solver.cache import CacheStore
from polybuild.solver.results import Chain, Result, Tree
from polybuild.tasks import first_error


@dataclass(frozen=True, slots=True)
class SolveOptions:
    """How to solve: caching, parallelism, layer format and the build's private inputs."""

    context_dir: Path
    ignore_patterns: tuple[str, ...] = ()
    no_cache: bool = False
    no_cache_ops: frozenset[str] = frozenset()  # op digests that must not use the cache
    jobs: int = field(default_factory=lambda: os.cpu_count() or 2)
    compression: Compression = Compression.GZIP
    compression_level: int | None = None
    source_date_epoch: int | None = None
    secrets: execop.BuildSecrets = field(default_factory=execop.BuildSecrets)
    network: str = "default"  # --network: the mode of RUN steps that do not choose one


@dataclass(frozen=True, slots=True)
class BaseImage:
    """A resolved base image for one platform: its layers and manifest digest."""

    layers: tuple[LayerRef, ...]
    manifest: Digest


def key_of(kind: str, definition: Any, inputs: list[str], extra: Any = None) -> str:
    payload = {"kind": kind, "def": definition, "inputs": inputs, "extra": extra}
    return "sha256:" + hashlib.sha256(canonical_json(payload)).hexdigest()


def is_emulated(platform: Platform) -> bool:
    """True when steps for `platform` run under QEMU here."""
    host = host_platform().architecture
    return not (
        platform.architecture == host or (platform.architecture == "386" and host == "amd64")
    )


class Solver:
    """Solves ops to results; one instance per build."""

    def __init__(
        self,
        runtime: Runtime,
        cache: CacheStore,
        options: SolveOptions,
        *,
        base_images: Mapping[tuple[str, Platform], BaseImage],
        names: Mapping[str, str] | None = None,
        progress: ProgressWriter | None = None,
        file_ops: FileOps | None = None,
    ) -> None:
        self.runtime = runtime
        self.store: ImageStore = runtime.store
        self.cache = cache
        self.options = options
        self.base_images = base_images
        self.names = dict(names or {})
        self.progress = progress or ProgressWriter(NullProgress())
        self.file_ops = file_ops
        self._tasks: dict[str, asyncio.Task[Result]] = {}
        self._slots = asyncio.Semaphore(max(1, options.jobs))
        self.executed: list[str] = []  # op digests that really ran (not cached), in order
        self.timings: dict[str, tuple[float, bool]] = {}  # digest -> (seconds, emulated)

    # ---- public -------------------------------------------------------------------------

    async def solve_all(self, roots: list[ops.Op | None]) -> list[Result]:
        """Solve every root together; the first failure cancels the others."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self.solve(root)) for root in roots]
        except BaseExceptionGroup as group_error:
            self._stop()
            first = first_error(group_error)
            raise first from None
        except BaseException:
            # Cancelled (Ctrl-C): stop the running containers now, not when their steps end.
            self._stop()
            raise
        return [task.result() for task in tasks]

    def _stop(self) -> None:
        self.runtime.executor.kill_all()
        for task in self._tasks.values():
            task.cancel()

    async def solve(self, op: ops.Op | None) -> Result:
        """The result of `op` (None is scratch: an empty chain)."""
        if op is None:
            return Chain((), key_of("scratch", None, []))
        task = self._tasks.get(op.digest)
        if task is None:
            task = asyncio.ensure_future(self._solve(op))
            self._tasks[op.digest] = task
        return await asyncio.shield(task)

    # ---- per op -------------------------------------------------------------------------

    async def _solve(self, op: ops.Op) -> Result:
        if isinstance(op, ops.ImageSource):
            return self._image(op)
        if isinstance(op, ops.LocalSource):
            return Tree(self.options.context_dir, key_of(op.kind, op.definition(), []))
        if isinstance(op, ops.InlineSource):
            return self._inline(op)
        # Inputs are independent (a stage and the stages it copies from): solve them together.
        inputs = list(await asyncio.gather(*(self.solve(i) for i in op.inputs())))
        if isinstance(op, ops.Merge):
            layers = tuple(layer for r in inputs if isinstance(r, Chain) for layer in r.layers)
            return Chain(layers, key_of(op.kind, op.definition(), [r.key for r in inputs]))
        extra = await self._extra_key(op, inputs)
        # What changes a layer's bytes without changing the op: the clamped mtimes and format.
        layer_format = [self.options.source_date_epoch, str(self.options.compression),
                        self.options.compression_level]  # fmt: skip
        key = key_of(op.kind, op.definition(), [r.key for r in inputs], [extra, layer_format])
        name = self.names.get(op.digest) or getattr(op, "description", "") or op.kind
        vertex = f"{op.digest}"
        emulated = isinstance(op, ops.Exec) and is_emulated(op.platform)
        use_cache = not (self.options.no_cache or op.digest in self.options.no_cache_ops)
        if use_cache:
            hit = self.cache.get(key)
            if hit is not None:
                self.progress.cached(vertex, name, platform=op.platform)
                return hit
        async with self._slots:
            started = time.monotonic()
            with self.progress.vertex(
                vertex,
                name,
                platform=op.platform,
                emulated=emulated,
                inputs=[i.digest for i in op.inputs() if i],
            ) as step:
                layer = await asyncio.to_thread(self._run_op, op, inputs, name, step)
            self.timings[op.digest] = (time.monotonic() - started, emulated)
            self.executed.append(op.digest)
        base = inputs[0]
        assert isinstance(base, Chain)
        chain = Chain((*base.layers, layer), key)
        self.cache.put(chain)
        return chain

    def _image(self, op: ops.ImageSource) -> Chain:
        image = self.base_images.get((op.ref, op.platform))
        if image is None:
            raise PolybuildError(f"base image {op.ref} for {op.platform} was not resolved")
        return Chain(image.layers, key_of(op.kind, str(image.manifest), []))

    def _inline(self, op: ops.InlineSource) -> Tree:
        """Heredoc files in a directory of their own (written once per op digest)."""
        directory = self.runtime.root / "inline" / op.digest.split(":")[1]
        if not directory.exists():
            tmp = directory.with_name(f"{directory.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
            tmp.mkdir(parents=True)
            try:
                for f in op.files:
                    # The name comes from the Dockerfile: one plain component, never a path,
                    # and created exclusively, so nothing can be written outside `tmp`.
                    if f.path in ("", ".", "..") or "/" in f.path or "\0" in f.path:
                        raise DockerfileError(
                            f"invalid heredoc name {f.path!r}: it must be a plain file name",
                            hint="use a name such as EOF or script.sh",
                        )
                    fd = os.open(tmp / f.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                                 | os.O_NOFOLLOW | os.O_CLOEXEC, f.mode)  # fmt: skip
                    with os.fdopen(fd, "w") as out:
                        out.write(f.data)
                    os.chmod(tmp / f.path, f.mode, follow_symlinks=False)
                if not directory.exists():
                    os.replace(tmp, directory)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return Tree(directory, op.digest)

    async def _extra_key(self, op: ops.Op, inputs: list[Result]) -> Any:
        """What the key needs beyond definitions: checksums of the context files a copy reads."""
        if isinstance(op, ops.Copy) and isinstance(op.source, ops.LocalSource):
            assert self.file_ops is not None
            return await asyncio.to_thread(
                self.file_ops.checksum, self.options.context_dir, op, self.options.ignore_patterns
            )
        if isinstance(op, ops.Copy) and op.url:
            # ADD <url>: the key is what the URL serves (the given --checksum, else fetched
            # now), so a changed remote file is downloaded again, as BuildKit does.
            if op.checksum:
                return op.checksum
            from polybuild.fileops.add import url_digest

            return await asyncio.to_thread(url_digest, op.url, instruction=op.description)
        if isinstance(op, ops.Exec):
            # A RUN that bind-mounts the context depends on the files it can see there.
            from polybuild.fileops.context import content_checksum

            paths = sorted({m.source_path.strip("/") or "." for m in op.mounts
                            if isinstance(m.source, ops.LocalSource)})  # fmt: skip
            if paths:
                return await asyncio.to_thread(
                    content_checksum, self.options.context_dir, paths, (),
                    self.options.ignore_patterns,
                )  # fmt: skip
        return None

    # ---- running (in a worker thread) ----------------------------------------------------

    def _run_op(self, op: ops.Op, inputs: list[Result], name: str, step: VertexHandle) -> LayerRef:
        base = inputs[0]
        assert isinstance(base, Chain)
        scratch = execop.make_scratch(self.runtime)
        snapshots: list[Snapshot] = []
        try:
            snapshot = self.runtime.snapshots.prepare(self._lowers(base))
            snapshots.append(snapshot)
            if isinstance(op, ops.Exec):
                self._run_exec(op, inputs, snapshot, snapshots, scratch, name, step)
            elif isinstance(op, ops.Copy):
                assert self.file_ops is not None
                source = inputs[1] if len(inputs) > 1 else None
                source_root = self._tree(source, snapshots) if source is not None else None
                self.file_ops.copy(op, source_root, snapshot.rootfs, self.options.ignore_patterns)
            elif isinstance(op, ops.Mkdir):
                assert self.file_ops is not None
                self.file_ops.mkdir(op, snapshot.rootfs)
            else:  # pragma: no cover - every layer-producing op is handled above
                raise PolybuildError(f"cannot run op {op.kind}")
            layer = self._commit(snapshot)
            if snapshot.overlay:
                # The upper dir is this layer unpacked: the next step stacks on it directly.
                self.runtime.layers.adopt(str(layer.diff_id), snapshot.upper)
            return layer
        finally:
            for snap in reversed(snapshots):
                self.runtime.snapshots.release(snap)
            execop.remove_scratch(scratch)

    def _lowers(self, chain: Chain) -> list[Path]:
        return self.runtime.unpacked([(layer.blob, layer.diff_id) for layer in chain.layers])

    def _tree(self, result: Result, snapshots: list[Snapshot]) -> Path:
        """A directory holding `result`'s files (a chain gets its own read-only snapshot)."""
        if isinstance(result, Tree):
            return result.path
        snapshot = self.runtime.snapshots.prepare(self._lowers(result))
        snapshots.append(snapshot)
        return snapshot.rootfs

    def _context_view(self, snapshots: list[Snapshot]) -> Path:
        """The build context as a RUN bind mount sees it: .dockerignore'd files hidden, and
        writes (`rw`) going to a throw-away upper directory, never to the user's files."""
        from polybuild.fileops.context import hidden_paths

        context = self.options.context_dir
        hide = hidden_paths(context, self.options.ignore_patterns)
        snapshot = self.runtime.snapshots.prepare([context], hide=hide)
        snapshots.append(snapshot)
        return snapshot.rootfs

    def _run_exec(
        self,
        op: ops.Exec,
        inputs: list[Result],
        snapshot: Snapshot,
        snapshots: list[Snapshot],
        scratch: Path,
        name: str,
        step: VertexHandle,
    ) -> None:
        sources: dict[str, Path] = {}
        for mount, result in zip(
            (m for m in op.mounts if m.source is not None), inputs[1:], strict=False
        ):
            assert mount.source is not None
            if isinstance(mount.source, ops.LocalSource):
                sources[mount.source.digest] = self._context_view(snapshots)
            else:
                sources[mount.source.digest] = self._tree(result, snapshots)
        tail = execop.OutputTail(step.log)
        with execop.prepared_mounts(self.runtime, op, sources, self.options.secrets, scratch) as (
            mounts,
            env,
        ):
            process = execop.exec_process(op, mounts, env, self.options.network)
            status = execop.run_streaming(self.runtime, snapshot.rootfs, process, tail)
        if not status.ok:
            raise execop.failure(op, status, tail, name, root=self.runtime.root)

    def _commit(self, snapshot: Snapshot) -> LayerRef:
        with self.store.content.writer() as writer:
            layer = self.runtime.snapshots.commit(
                snapshot,
                writer,  # type: ignore[arg-type]
                compression=self.options.compression,
                level=self.options.compression_level,
                source_date_epoch=self.options.source_date_epoch,
            )
        return layer


class FileOps(Protocol):
    """COPY/ADD/WORKDIR semantics, applied to a writable root (see solver.fileop)."""

    def checksum(self, context: Path, op: ops.Copy, ignore: tuple[str, ...]) -> str: ...

    def copy(
        self, op: ops.Copy, source_root: Path | None, dest_root: Path, ignore: tuple[str, ...]
    ) -> None: ...

    def mkdir(self, op: ops.Mkdir, dest_root: Path) -> None: ...
