"""COPY/ADD and WORKDIR: file operations on a writable root, through the solver's FileOps."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from polybuild.graph import ops
from polybuild.solver.ops.base import OpContext, Step
from polybuild.solver.results import Result


class CopyHandler:
    async def extra_key(self, op: ops.Copy, context: OpContext) -> Any:
        """Checksums of the context files a copy reads; for ADD <url>, what the URL serves
        (the given --checksum, else fetched now), so a changed remote file is downloaded
        again, as BuildKit does."""
        if isinstance(op.source, ops.LocalSource):
            directory, ignore = context.options.local_dir(op.source)
            return await asyncio.to_thread(context.file_ops.checksum, directory, op, ignore)
        if op.url:
            if op.checksum:
                return op.checksum
            return await asyncio.to_thread(context.file_ops.url_digest, op.url, op.description)
        return None

    def apply(self, op: ops.Copy, inputs: Sequence[Result], step: Step, context: OpContext) -> None:
        source_root = step.held.tree(inputs[1]) if len(inputs) > 1 else None
        ignore = context.options.ignore_patterns
        if isinstance(op.source, ops.LocalSource):
            _, ignore = context.options.local_dir(op.source)
        context.file_ops.copy(op, source_root, step.snapshot.rootfs, ignore)


class MkdirHandler:
    async def extra_key(self, op: ops.Mkdir, context: OpContext) -> Any:
        return None

    def apply(
        self, op: ops.Mkdir, inputs: Sequence[Result], step: Step, context: OpContext
    ) -> None:
        context.file_ops.mkdir(op, step.snapshot.rootfs)
