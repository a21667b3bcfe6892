"""The steps BuildKit shows around a Dockerfile's own (`[internal] load build definition from
Dockerfile`, `[internal] load metadata for REF`, `[internal] load .dockerignore`, `[1/3] FROM
REF@sha256:...` with its resolve line, `[internal] load build context`), reported for a build
on this machine with what it really read: the same names and order as BuildKit's."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from polybuild.dockerfile import BuildGraph
from polybuild.errors import PolybuildError
from polybuild.fileops.context import list_context_files
from polybuild.graph import ops
from polybuild.image import ImageStore
from polybuild.image.config import ImageConfig
from polybuild.imagebuild.pull_steps import PullSteps, pull_key
from polybuild.platforms import Platform, format_platform
from polybuild.progress.writer import ProgressWriter, VertexHandle
from polybuild.registry.pull_progress import observing
from polybuild.solver.options import BaseImage

Resolve = Callable[[str, Platform], ImageConfig]
Prefetch = Callable[[str, Platform], None]


@contextlib.contextmanager
def _step(progress: ProgressWriter | None, vertex: str, name: str) -> Iterator[VertexHandle | None]:
    if progress is None:
        yield None
        return
    with progress.vertex(vertex, name) as handle:
        yield handle


def _transferred(
    handle: VertexHandle | None, what: str, size: int, writer: ProgressWriter | None
) -> None:
    if handle is not None and writer is not None:
        now = writer.clock()
        handle.status(f"transferring {what}:", size, started=now, completed=now)


@contextlib.contextmanager
def load_definition(progress: ProgressWriter | None, name: str) -> Iterator[Callable[[int], None]]:
    """`[internal] load build definition from NAME`; call the given function with the
    Dockerfile's size once it is read."""
    with _step(
        progress, "internal:definition", f"[internal] load build definition from {name}"
    ) as h:
        yield lambda size: _transferred(h, "dockerfile", size, progress)


@contextlib.contextmanager
def load_dockerignore(progress: ProgressWriter | None, path: Path | None) -> Iterator[None]:
    """`[internal] load .dockerignore`, with the size of the file that applies (0: none)."""
    with _step(progress, "internal:dockerignore", "[internal] load .dockerignore") as h:
        yield
        size = path.stat().st_size if path is not None and path.is_file() else 0
        _transferred(h, "context", size, progress)


def metadata_steps(
    resolve: Resolve,
    progress: ProgressWriter | None,
    multi_platform: bool,
    prefetch: Prefetch | None = None,
) -> tuple[Resolve, Prefetch | None]:
    """`resolve` reporting `[internal] load metadata for REF` (`[linux/arm64 internal] ...`
    when several platforms are built) the first time it is asked for each (REF, platform),
    and `prefetch` with the same pull reporting (a pull begun early still shows its blobs
    under its FROM step); safe to call from the conversion's threads."""
    if progress is None:
        return resolve, prefetch
    seen: set[tuple[str, Platform]] = set()
    lock = threading.Lock()
    pulls = PullSteps(progress)

    def observed(ref: str, platform: Platform) -> None:
        assert prefetch is not None
        with observing(pulls.for_pull(ref, platform)):  # the pull task keeps this context
            prefetch(ref, platform)

    def reported(ref: str, platform: Platform) -> ImageConfig:
        with lock:
            first = (ref, platform) not in seen
            seen.add((ref, platform))
        if not first:
            return resolve(ref, platform)
        where = f"{format_platform(platform)} internal" if multi_platform else "internal"
        vertex = f"internal:metadata:{ref}:{format_platform(platform)}"
        # the pull's blob lines are held for the FROM step; an [auth] step is shown as is
        with (
            progress.vertex(vertex, f"[{where}] load metadata for {ref}"),
            observing(pulls.for_pull(ref, platform)),
        ):
            return resolve(ref, platform)

    return reported, observed if prefetch is not None else None


def _pinned(store: ImageStore, ref: str, fallback: str) -> str:
    """REF@DIGEST as BuildKit names a FROM: the digest the reference points to (an index
    for a multi-platform image), else the platform's manifest's."""
    if "@" in ref:
        return ref
    try:
        digest = str(store.resolve(ref).target.digest)
    except PolybuildError:  # a name only: the manifest's digest will do
        digest = fallback
    return f"{ref}@{digest}"


def from_steps(
    progress: ProgressWriter | None,
    graphs: tuple[BuildGraph, ...],
    names: Mapping[str, str],
    resolved: Mapping[tuple[str, Platform], BaseImage],
    store: ImageStore,
) -> None:
    """Each stage's base image as BuildKit's `[1/3] FROM REF@sha256:...` step, with its
    `resolve REF@sha256:... done` line (the image was resolved, and pulled if needed, while
    the Dockerfile was converted), then a line for each layer blob that pull fetched."""
    if progress is None:
        return
    done: set[str] = set()
    for graph in graphs:
        for op in graph.ops():
            if not isinstance(op, ops.ImageSource) or op.digest in done or op.digest not in names:
                continue
            done.add(op.digest)
            base = resolved.get((op.ref, op.platform))
            pinned = _pinned(store, op.ref, str(base.manifest) if base is not None else "")
            name = names[op.digest].replace(f" FROM {op.ref}", f" FROM {pinned}", 1)
            with progress.vertex(op.digest, name, platform=op.platform) as handle:
                now = progress.clock()
                handle.status(f"resolve {pinned}", 0, started=now, completed=now)
                progress.release(pull_key(op.ref, op.platform), handle)  # the layers pulled


def load_context(
    progress: ProgressWriter | None,
    graphs: tuple[BuildGraph, ...],
    context: Path,
    patterns: tuple[str, ...],
) -> None:
    """`[internal] load build context` with the bytes of the files the build may read (those
    .dockerignore leaves), when a step reads the context at all."""
    if progress is None:
        return
    if not any(isinstance(op, ops.LocalSource) for g in graphs for op in g.ops()):
        return
    with progress.vertex("internal:context", "[internal] load build context") as handle:
        size = 0
        root = str(context)
        for rel in list_context_files(context, patterns):
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(root, rel))
                size += st.st_size if stat.S_ISREG(st.st_mode) else 0
        _transferred(handle, "context", size, progress)


__all__ = ["from_steps", "load_context", "load_definition", "load_dockerignore", "metadata_steps"]
