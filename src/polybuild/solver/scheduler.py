"""The solver: runs the build graphs of every target platform together, each op at most once.

Ops are memoised by digest, so work that does not depend on the target platform (a
`FROM --platform=$BUILDPLATFORM` stage) runs once for all targets. Independent ops run in
parallel up to `jobs`; the first failure cancels the rest and kills running containers.
Results are cached by key (op definition + input keys + content checksums) in SQLite and
reused across builds. What an op means is its handler's business (`solver.ops`); the
machine it runs on is a `Worker` (`solver.worker`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import cast

from polybuild.errors import CacheBlobError, PolybuildError
from polybuild.graph import ops
from polybuild.image.layer import Layer
from polybuild.platforms import Platform, host_platform
from polybuild.progress.writer import NullProgress, ProgressWriter, VertexHandle
from polybuild.snapshot import Snapshot
from polybuild.solver import execop
from polybuild.solver.cache import CacheStore
from polybuild.solver.fileop import DockerfileFileOps
from polybuild.solver.ops import DIRECT_HANDLERS, LAYER_HANDLERS, Held, OpContext, Step, key_of
from polybuild.solver.options import BaseImage, FileOps, ImportedCache, SolveOptions
from polybuild.solver.results import Chain, Result
from polybuild.solver.shared_layers import SharedLayers, share_key, with_base
from polybuild.solver.worker import ContentStore, Worker
from polybuild.tasks import first_error


def is_emulated(platform: Platform) -> bool:
    """True when steps for `platform` run under QEMU here."""
    host = host_platform().architecture
    return not (
        platform.architecture == host or (platform.architecture == "386" and host == "amd64")
    )


class Solver:
    """Solves ops to results on one worker; one instance per build."""

    def __init__(
        self,
        worker: Worker,
        content: ContentStore,
        cache: CacheStore,
        options: SolveOptions,
        *,
        base_images: Mapping[tuple[str, Platform], BaseImage],
        names: Mapping[str, str] | None = None,
        progress: ProgressWriter | None = None,
        file_ops: FileOps | None = None,
        imported: ImportedCache | None = None,
        materialize_roots: bool = True,
    ) -> None:
        self.worker = worker
        self.content = content
        self.cache = cache
        self.options = options
        file_ops = file_ops or DockerfileFileOps(options.source_date_epoch)
        self.context = OpContext(worker, options, base_images, file_ops)
        self.names = dict(names or {})
        self.progress = progress or ProgressWriter(NullProgress())
        self._tasks: dict[str, asyncio.Task[Result]] = {}
        self._slots = asyncio.Semaphore(max(1, options.jobs))
        self.executed: list[str] = []  # op digests that really ran (not cached), in order
        self.timings: dict[str, tuple[float, bool]] = {}  # digest -> (seconds, emulated)
        self.imported = imported
        # False: a result taken from an imported cache keeps its layers where they are (a
        # push finds them in the registry); whoever needs them calls materialize().
        self.materialize_roots = materialize_roots
        self.records: dict[str, Chain] = {}  # every layer step's chain by cache key
        self.roots: list[Chain] = []  # the results of solve_all, in order
        self._distrusted: set[str] = set()  # op digests whose imported records failed
        self._imported: dict[str, Chain] = {}  # op digest -> the imported chain it took
        self._shared = SharedLayers()  # platform-free COPY layers being made (shared_layers)

    # ---- public -------------------------------------------------------------------------

    async def solve_all(self, roots: list[ops.Op | None]) -> list[Result]:
        """Solve every root together; the first failure cancels the others. Each result's
        layers are in the content store when this returns (an imported hit's are fetched)."""
        try:
            async with asyncio.TaskGroup() as group:
                solve = self._solve_whole if self.materialize_roots else self.solve
                tasks = [group.create_task(solve(root)) for root in roots]
        except BaseExceptionGroup as group_error:
            self._stop()
            raise first_error(group_error) from None
        except BaseException:
            # Cancelled (Ctrl-C): stop the running containers now, not when their steps end.
            self._stop()
            raise
        results = [task.result() for task in tasks]
        self.roots = [r for r in results if isinstance(r, Chain)]
        for chain in self._imported.values():
            if all(self.content.exists(x.blob) for x in chain.layers):
                self.cache.put(chain)  # whole here now: later builds hit without importing
        return results

    async def _solve_whole(self, root: ops.Op | None) -> Result:
        return (await self._ready([root], [await self.solve(root)]))[0]

    async def materialize(self, chain: Chain) -> str:
        """Fetch what an imported chain lacks here; the digest of a layer its cache could
        not give (warned about), or "" when every layer is here."""
        if self.imported is None or all(self.content.exists(x.blob) for x in chain.layers):
            return ""
        try:
            await self.imported.materialize(chain.layers, self.content)
        except CacheBlobError as exc:
            self.progress.warn(f"{exc.message}; the steps that made it run instead")
            return exc.blob or "?"
        return ""

    async def _ready(self, producers: list[ops.Op | None], results: list[Result]) -> list[Result]:
        """`results` (each made by the op at the same position of `producers`) with every
        chain's layers in the content store. A chain whose imported layer cannot be had is
        solved again: every imported step whose chain holds that layer is forgotten and
        takes no imported record again, so those steps run here."""
        ready = list(results)
        for i, producer in enumerate(producers):
            while producer is not None and isinstance(ready[i], Chain):
                bad = await self.materialize(cast(Chain, ready[i]))
                if not bad:
                    break
                for digest, chain in list(self._imported.items()):
                    if bad == "?" or any(str(x.blob) == bad for x in chain.layers):
                        self._distrusted.add(digest)
                        del self._imported[digest]
                        self._tasks.pop(digest, None)
                self._distrusted.add(producer.digest)
                self._tasks.pop(producer.digest, None)
                ready[i] = await self.solve(producer)
        return ready

    def _stop(self) -> None:
        self.worker.executor.kill_all()
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
        # Inputs are independent (a stage and the stages it copies from): solve them together.
        inputs = list(await asyncio.gather(*(self.solve(i) for i in op.inputs())))
        direct = DIRECT_HANDLERS.get(type(op))
        if direct is not None:
            return direct.result(op, inputs, self.context)
        handler = LAYER_HANDLERS.get(type(op))
        if handler is None:  # pragma: no cover - every op kind has a handler
            raise PolybuildError(f"cannot run op {op.kind}")
        extra = await handler.extra_key(op, self.context)
        # What changes a layer's bytes without changing the op: the clamped mtimes and format.
        written = self.options.layer_format
        layer_format = [written.source_date_epoch, str(written.compression), written.level]
        key = key_of(op.kind, op.definition(), [r.key for r in inputs], [extra, layer_format])
        name = self.names.get(op.digest) or getattr(op, "description", "") or op.kind
        emulated = isinstance(op, ops.Exec) and is_emulated(op.platform)
        use_cache = not (self.options.no_cache or op.digest in self.options.no_cache_ops)
        if use_cache:
            hit = self.cache.get(key)
            if hit is None and self.imported is not None and op.digest not in self._distrusted:
                layers = self.imported.lookup(key)
                if layers is not None:
                    hit = Chain(layers, key, cached=True)
                    self._imported[op.digest] = hit
            if hit is not None:
                self.progress.cached(op.digest, name, platform=op.platform)
                self.records[key] = hit
                return hit
        inputs = await self._ready(list(op.inputs()), inputs)
        base = cast(Chain, inputs[0])
        async with self._slots:
            started = time.monotonic()
            with self.progress.vertex(
                op.digest,
                name,
                platform=op.platform,
                emulated=emulated,
                inputs=[i.digest for i in op.inputs() if i],
            ) as vertex:
                shared = share_key(op, inputs, extra, layer_format)
                layer = await asyncio.to_thread(
                    self._run_layer_op, op, inputs, name, vertex, shared
                )
            self.timings[op.digest] = (time.monotonic() - started, emulated)
            self.executed.append(op.digest)
        chain = Chain((*base.layers, layer), key)
        self.cache.put(chain)
        self.records[key] = chain
        return chain

    # ---- running (in a worker thread) ----------------------------------------------------

    def _run_layer_op(
        self,
        op: ops.Op,
        inputs: list[Result],
        name: str,
        vertex: VertexHandle,
        shared: str | None = None,
    ) -> Layer:
        base = inputs[0]
        assert isinstance(base, Chain)
        held = Held(self.worker)
        scratch = execop.make_scratch(self.worker.root)
        try:
            lowers = held.lowers(base)
            snapshot = held.prepare(lowers)
            key = with_base(shared, snapshot.rootfs, op.dest, lowers) if shared and isinstance(
                op, ops.Copy
            ) else None  # fmt: skip
            if key is None:
                return self._make_layer(op, inputs, Step(snapshot, held, vertex, name, scratch))
            maker, made = self._shared.claim(key)
            if not maker:
                try:
                    return made.result()  # another platform's identical layer
                except Exception:
                    self._shared.forget(key)
            try:
                layer = self._make_layer(op, inputs, Step(snapshot, held, vertex, name, scratch))
            except BaseException as exc:
                if maker:
                    made.set_exception(exc)
                raise
            if maker:
                made.set_result(layer)
            return layer
        finally:
            held.release()
            execop.remove_scratch(scratch)

    def _make_layer(self, op: ops.Op, inputs: list[Result], step: Step) -> Layer:
        LAYER_HANDLERS[type(op)].apply(op, inputs, step, self.context)
        layer = self._commit(step.snapshot)
        if step.snapshot.overlay:
            # The upper dir is this layer unpacked: the next step stacks on it directly.
            self.worker.adopt(layer.diff_id, step.snapshot.upper)
        return layer

    def _commit(self, snapshot: Snapshot) -> Layer:
        with self.content.writer() as writer:
            return self.worker.snapshots.commit(
                snapshot,
                writer,  # type: ignore[arg-type]
                self.options.layer_format,
            )


__all__ = ["BaseImage", "FileOps", "SolveOptions", "Solver", "is_emulated", "key_of"]
