"""The public build entry points: `build()` for Python callers, `run_request()` for the CLI,
both thin synchronous fronts of the one async `build_async()`.

A build on one BuildKit node whose outputs the daemon can write itself goes straight to it
(buildkit_direct); every other build brings its images into this machine's store and writes
the outputs from there (stored_build). The first never imports the second's frontend,
solver, runtime and exporters (a fifth of a second at every start).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TextIO

from polybuild.builders import Builder, BuilderStore, Node
from polybuild.dataroot import data_root
from polybuild.exporters.destination import check_file_dest
from polybuild.exporters.metadata import NO_OUTPUT_WARNING
from polybuild.imagebuild.build_history import recording
from polybuild.imagebuild.build_reports import write_reports
from polybuild.imagebuild.buildkit_outputs import DaemonOutput, daemon_outputs
from polybuild.imagebuild.context_url import UNFETCHED
from polybuild.imagebuild.driver import plan
from polybuild.imagebuild.request import BuildRequest, BuildResult, make_request
from polybuild.platforms import Platform
from polybuild.progress import make_renderer
from polybuild.progress.writer import Fanout, ProgressWriter

if TYPE_CHECKING:
    from polybuild.runtime import Runtime


def _builder(request: BuildRequest, root: Path) -> Builder:
    """--builder, else $BUILDX_BUILDER or the one `polybuild use` chose (unknown: an error)."""
    builders = BuilderStore(root)
    return builders.get(request.builder) if request.builder else builders.current()


def _direct_outputs(request: BuildRequest, builder: Builder) -> tuple[DaemonOutput, ...] | None:
    """The outputs as the daemon writes them, when only BuildKit nodes can build and the
    daemon can write every output; else None."""
    if request.call == "graph" or not builder.nodes:
        return None
    if not all(node.is_buildkit for node in builder.nodes):
        return None
    return daemon_outputs(request)


async def build_async(
    request: BuildRequest,
    *,
    stderr: TextIO | None = None,
    stdout: BinaryIO | None = None,
    runtime: Runtime | None = None,
) -> BuildResult:
    """Build as `polybuild build` does, on one event loop: base images resolved together,
    every platform solved together, then each output written; progress on `stderr`."""
    if request.secrets.ssh_keys:
        from polybuild.imagebuild.ssh_agents import ssh_agents

        with ssh_agents(request) as served:
            return await build_async(served, stderr=stderr, stdout=stdout, runtime=runtime)
    err = stderr or sys.stderr
    out = stdout or sys.stdout.buffer
    builder = _builder(request, runtime.root if runtime is not None else data_root())
    direct = _direct_outputs(request, builder)
    if direct is not None:
        result = await _build_on_daemon(request, builder, direct, err, out)
        if result is not None:
            return result
    # The local frontend, solver, runtime and exporters load only for a build that needs
    # them (about 0.2 s of imports).
    from polybuild.imagebuild.stored_build import build_stored

    with contextlib.ExitStack() as stack:
        if any(n.kind == "remote" for n in request.build_contexts):
            # git or HTTP(S) named contexts, fetched for this build
            from polybuild.imagebuild.named_contexts import fetched_named_contexts

            request = stack.enter_context(fetched_named_contexts(request))
        if request.context == UNFETCHED:  # a git or HTTP(S) context, fetched for this build
            from polybuild.imagebuild.context_source import fetched_context

            request = stack.enter_context(fetched_context(request))
        return await build_stored(request, builder, stderr=err, stdout=out, runtime=runtime)


async def _build_on_daemon(
    request: BuildRequest,
    builder: Builder,
    outputs: tuple[DaemonOutput, ...],
    err: TextIO,
    stdout: BinaryIO,
) -> BuildResult | None:
    """The build on the one BuildKit node planned for every platform, the daemon writing
    the outputs; None (nothing done) when the plan splits the platforms over nodes."""
    # The BuildKit client (grpc) loads only for a build on a BuildKit daemon.
    from polybuild.imagebuild import buildkit_direct
    from polybuild.imagebuild.buildkit_driver import BuildKitDriver

    def warn(message: str) -> None:
        err.write(f"WARNING: {message}\n")

    for output in outputs:
        if output.dest is not None:
            check_file_dest(output.dest, stdout)
    drivers: dict[str, BuildKitDriver] = {}

    def driver(node: Node) -> BuildKitDriver:
        return drivers.setdefault(node.endpoint, BuildKitDriver(node))

    planned = await plan(request, builder, driver, warn)
    if len(planned) != 1:
        return None
    only = planned[0]
    assert isinstance(only.driver, BuildKitDriver)
    only.driver.check(request)
    with recording(request, builder, data_root(), warn) as outcome:
        outcome.planned = planned
        recorder = outcome.recorder
        shown = make_renderer(request.progress, err, instance=(builder.name, builder.driver))
        writer = ProgressWriter(Fanout(shown, recorder))
        try:
            response = await buildkit_direct.build_direct(
                only.driver, request, only.platforms, writer, outputs, stdout
            )
        finally:
            writer.close()
        outcome.image_digest = response.get(buildkit_direct.DIGEST, "")
        if not request.outputs:
            warn(NO_OUTPUT_WARNING)
        buildkit_direct.write_result_files(request, response)
    write_reports(err, request, planned, recorder.events)
    return BuildResult(buildkit_direct.image_descriptor(response), (), ())


def run_request(
    request: BuildRequest,
    *,
    stderr: TextIO | None = None,
    stdout: BinaryIO | None = None,
    runtime: Runtime | None = None,
) -> BuildResult:
    """`build_async` for synchronous callers (the CLI): runs it on an event loop of its own."""
    return asyncio.run(build_async(request, stderr=stderr, stdout=stdout, runtime=runtime))


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
    argument: `outputs` take buildx's `-o` syntax, `load=True` stores the image locally,
    `secrets` take `--secret`'s `id=ID,src=FILE|env=VAR`. Raises a `PolybuildError`
    (UsageError for a bad argument) on failure.

        >>> polybuild.build(".", platforms=["linux/amd64", "linux/arm64"],
        ...                 tags=["example:latest"], load=True)       # doctest: +SKIP
    """
    request = make_request(
        context,
        platforms=platforms,
        tags=tags,
        outputs=outputs,
        build_args=build_args,
        dockerfile=dockerfile,
        target=target,
        push=push,
        load=load,
        no_cache=no_cache,
        secrets=secrets,
        progress=progress,
    )
    return run_request(request)
