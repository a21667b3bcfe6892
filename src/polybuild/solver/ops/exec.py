"""RUN: a process in a container on the step's snapshot, with its --mount sources."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from polybuild.graph import ops
from polybuild.solver import execop
from polybuild.solver.ops.base import Held, OpContext, Step
from polybuild.solver.results import Result


class ExecHandler:
    async def extra_key(self, op: ops.Exec, context: OpContext) -> Any:
        """A RUN that bind-mounts the context depends on the files it can see there, and
        (as in BuildKit's exec op) on the --add-host entries of its /etc/hosts."""
        options = context.options
        meta: dict[str, Any] = {}
        if options.extra_hosts:
            meta["hosts"] = [list(h) for h in options.extra_hosts]
        if options.ulimits:
            meta["ulimits"] = [list(u) for u in options.ulimits]
        if options.shm_size is not None:
            meta["shm"] = options.shm_size
        by_source: dict[str, tuple[ops.LocalSource, set[str]]] = {}
        for m in op.mounts:
            if isinstance(m.source, ops.LocalSource):
                paths = by_source.setdefault(m.source.name, (m.source, set()))[1]
                paths.add(m.source_path.strip("/") or ".")
        if not by_source:
            return meta or None
        checksums = []
        for name in sorted(by_source):
            source, paths = by_source[name]
            directory, ignore = options.local_dir(source)
            checksums.append(await asyncio.to_thread(
                context.file_ops.paths_checksum, directory, sorted(paths), ignore
            ))  # fmt: skip
        # The build context alone keeps the key it always had.
        checksum = checksums[0] if list(by_source) == ["context"] else checksums
        return {"context": checksum, **meta} if meta else checksum

    def apply(self, op: ops.Exec, inputs: Sequence[Result], step: Step, context: OpContext) -> None:
        sources: dict[str, Path] = {}
        mounted = (m for m in op.mounts if m.source is not None)
        for mount, result in zip(mounted, inputs[1:], strict=False):
            assert mount.source is not None
            if isinstance(mount.source, ops.LocalSource):
                sources[mount.source.digest] = _context_view(step.held, context, mount.source)
            else:
                sources[mount.source.digest] = step.held.tree(result)
        tail = execop.OutputTail(step.vertex.log)
        worker = context.worker
        options = context.options
        with execop.prepared_mounts(worker, op, sources, options.secrets, step.scratch) as (
            mounts,
            env,
        ):
            process = execop.exec_process(
                op,
                mounts,
                env,
                options.network,
                options.extra_hosts,
                options.ulimits,
                options.shm_size,
                options.devices,
            )
            status = execop.run_streaming(worker.executor, step.snapshot.rootfs, process, tail)
        if not status.ok:
            raise execop.failure(op, status, tail, step.name, root=worker.root)


def _context_view(held: Held, context: OpContext, source: ops.LocalSource) -> Path:
    """The build context (or a named directory) as a RUN bind mount sees it: .dockerignore'd
    files hidden, and writes (`rw`) going to a throw-away upper directory, never to the
    user's files."""
    directory, ignore = context.options.local_dir(source)
    hide = context.file_ops.hidden_paths(directory, ignore)
    return held.prepare([directory], hide=hide).rootfs
