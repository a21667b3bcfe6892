"""COPY, ADD and WORKDIR for the solver: graph ops applied to a writable root with fileops."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

from polybuild.fileops import add_url, content_checksum, copy_files, make_dir, resolve_owner
from polybuild.graph import ops


class DockerfileFileOps:
    """The solver's FileOps: BuildKit's COPY/ADD/WORKDIR rules (see polybuild.fileops)."""

    def __init__(self, source_date_epoch: int | None = None) -> None:
        self.source_date_epoch = source_date_epoch
        # A solve's COPY of the same sources for each platform reads the context once (it
        # is one snapshot of the context for the whole build, as BuildKit's transfer is).
        self._checksums: dict[tuple[object, ...], str] = {}
        self._lock = threading.Lock()
        self._locks: dict[tuple[object, ...], threading.Lock] = {}

    def checksum(self, context: Path, op: ops.Copy, ignore: tuple[str, ...]) -> str:
        key = (str(context), op.sources, op.exclude, ignore, op.parents)
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # a second platform waits for the first's walk, then reuses it
            found = self._checksums.get(key)
            if found is None:
                found = self._checksums[key] = content_checksum(
                    context, op.sources, op.exclude, ignore, parents=op.parents,
                    instruction=op.description,
                )  # fmt: skip
        return found

    def paths_checksum(self, context: Path, paths: Sequence[str], ignore: tuple[str, ...]) -> str:
        return content_checksum(context, paths, (), ignore)

    def url_digest(self, url: str, instruction: str) -> str:
        from polybuild.fileops.add import url_digest

        return url_digest(url, instruction=instruction)

    def hidden_paths(self, context: Path, ignore: tuple[str, ...]) -> tuple[str, ...]:
        from polybuild.fileops.context import hidden_paths

        return hidden_paths(context, ignore)

    def copy(
        self, op: ops.Copy, source_root: Path | None, dest_root: Path, ignore: tuple[str, ...]
    ) -> None:
        instruction = op.description
        owner = resolve_owner(dest_root, op.chown, instruction=instruction) if op.chown else None
        if op.url:
            add_url(
                op.url,
                dest_root,
                op.dest,
                chmod=op.chmod,
                chown=owner,
                checksum=op.checksum,
                unpack=op.unpack,
                keep_git_dir=op.keep_git_dir,
                source_date_epoch=self.source_date_epoch,
                instruction=instruction,
            )
            return
        assert source_root is not None
        from_context = isinstance(op.source, ops.LocalSource)
        copy_files(
            source_root, dest_root, op.sources, op.dest,
            chmod=op.chmod, chown=owner, parents=op.parents, exclude=op.exclude,
            reset_owner=from_context or isinstance(op.source, ops.InlineSource),
            source_date_epoch=self.source_date_epoch, is_add=op.is_add, unpack=op.unpack,
            ignore=ignore if from_context else (), instruction=instruction,
        )  # fmt: skip

    def mkdir(self, op: ops.Mkdir, dest_root: Path) -> None:
        owner = (
            resolve_owner(dest_root, op.user, instruction=f"WORKDIR {op.path}") if op.user else None
        )
        make_dir(
            dest_root,
            op.path,
            owner=owner,
            mode=op.mode,
            source_date_epoch=self.source_date_epoch,
            instruction=f"WORKDIR {op.path}",
        )
