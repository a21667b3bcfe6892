"""The public build entry points: `build()` for Python callers, `run_request()` for the CLI."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from polybuild.dockerfile import outline
from polybuild.exporters.assemble import PlatformImage
from polybuild.exporters.export import ExportResult
from polybuild.exporters.spec import OutputSpec
from polybuild.image import ImageStore
from polybuild.image.select import Selected
from polybuild.imagebuild.pipeline import convert_all, solve, source_date_epoch
from polybuild.imagebuild.request import BuildRequest, BuildResult
from polybuild.platforms import Platform, format_platform, parse_list
from polybuild.progress import emulation_report, make_renderer
from polybuild.progress.writer import Fanout, ProgressWriter, Recorder
from polybuild.runtime import Runtime
from polybuild.solver.fileop import DockerfileFileOps


def _pull_base(store: ImageStore, ref: str, platform: Platform) -> Selected:
    from polybuild.registry import resolve_base_image

    return asyncio.run(resolve_base_image(store, ref, platform))


def _push(content: Any, target: Any, refs: Any, /, *, docker_media_types: bool) -> Any:
    """polybuild.registry.push, imported only when a build pushes (httpx is slow to import)."""
    from polybuild.registry import push

    return push(content, target, refs, docker_media_types=docker_media_types)


def _assign_nodes(request: BuildRequest, runtime: Runtime) -> None:
    """Check the builder and send each platform to a node (all nodes run here for now)."""
    from polybuild.builders import BuilderStore, resolve_nodes
    from polybuild.platforms import default_platform, runnable_platforms

    builders = BuilderStore(runtime.root)
    builder = builders.get(request.builder) if request.builder else builders.current()
    resolve_nodes(
        request.platforms or (default_platform(),),
        builder.nodes,
        lambda node: runnable_platforms() if node.is_local else (),
    )


def run_request(
    request: BuildRequest,
    *,
    stderr: TextIO | None = None,
    stdout: BinaryIO | None = None,
    runtime: Runtime | None = None,
) -> BuildResult:
    """Build as `polybuild build` does: progress on stderr, outputs written, report printed."""
    from polybuild import exporters

    err = stderr or sys.stderr
    runtime = runtime or Runtime()
    runtime.cleanup_stale()
    store = runtime.store
    outputs = exporters.parse_outputs(
        request.outputs,
        push=request.push,
        load=request.load,
        tags=request.tags,
        annotations=request.annotations,
    )
    out_stream = stdout or sys.stdout.buffer
    exporters.check_outputs(outputs, stdout=out_stream, store=store, pusher=_push)
    _assign_nodes(request, runtime)
    converted = convert_all(request, runtime, _pull_base)
    if request.call == "outline":
        text = "\n".join(outline(graph) for graph in converted.graphs)
        err.write(text if text.endswith("\n") else text + "\n")
        return BuildResult(None, (), (), outline=text)
    recorder = Recorder()
    writer = ProgressWriter(Fanout(make_renderer(request.progress, err), recorder))
    epoch = source_date_epoch(request)
    try:
        with runtime.in_use(), store.lease():
            images, solver = solve(request, runtime, converted, writer, DockerfileFileOps(epoch))
            results = _export(images, outputs, store, out_stream, err, epoch)
    finally:
        writer.close()
    assembled = results[0].image if results else None
    if not outputs:
        err.write("WARNING: " + exporters.NO_OUTPUT_WARNING + "\n")
    if assembled is not None:
        names = [name for r in results for name in r.output.names]
        if request.iidfile:
            exporters.write_iidfile(request.iidfile, assembled)
        if request.metadata_file:
            exporters.write_metadata_file(
                request.metadata_file, exporters.metadata(assembled, names)
            )
    report = emulation_report(recorder.events)
    if report.steps and request.progress != "quiet":
        text = report.render()
        err.write(text if text.endswith("\n") else text + "\n")
    return BuildResult(
        index=assembled.target if assembled is not None else None,
        images=tuple(images),
        executed=tuple(solver.executed),
        emulated_seconds=tuple((d, t) for d, (t, emu) in solver.timings.items() if emu),
    )


def _export(
    images: list[PlatformImage],
    outputs: list[OutputSpec],
    store: ImageStore,
    stdout: BinaryIO,
    err: TextIO,
    epoch: int | None,
) -> list[ExportResult]:
    from polybuild import exporters

    if not outputs:
        return []

    def warn(message: str) -> None:
        err.write(f"WARNING: {message}\n")

    source = exporters.ExportSource(store.content, tuple(images))
    return exporters.export(
        source,
        outputs,
        store=store,
        pusher=_push,
        stdout=stdout,
        warn=warn,
        source_date_epoch=epoch,
    )


def build(
    context: str | Path,
    *,
    platforms: Sequence[str | Platform] = (),
    tags: Sequence[str] = (),
    outputs: Sequence[str] = (),
    build_args: Mapping[str, str] | None = None,
    dockerfile: str | Path | None = None,
    target: str = "",
    push: bool = False,
    load: bool = False,
    no_cache: bool = False,
    secrets: Sequence[str] = (),
    progress: str = "quiet",
) -> BuildResult:
    """Build `context` for `platforms` (default: this machine's) and write `outputs`.

    The synchronous front of the async core, with `polybuild build`'s meaning for every
    argument: `outputs` take buildx's `-o` syntax, `load=True` stores the image locally.

        >>> polybuild.build(".", platforms=["linux/amd64", "linux/arm64"],
        ...                 tags=["example:latest"], load=True)       # doctest: +SKIP
    """
    parsed = parse_list([p if isinstance(p, str) else format_platform(p) for p in platforms])
    request = BuildRequest(
        context=Path(context),
        dockerfile=Path(dockerfile) if dockerfile is not None else None,
        platforms=parsed,
        build_args=dict(build_args or {}),
        target=target,
        tags=tuple(tags),
        outputs=tuple(outputs),
        push=push,
        load=load,
        no_cache=no_cache,
        secrets=tuple(secrets),
        progress=progress,
    )
    return run_request(request)
