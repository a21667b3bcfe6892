"""A build whose images come into this machine's store: every planned node builds its
platforms (this machine's frontend and solver, ssh nodes, BuildKit daemons sending their OCI
result back), then each output is written from the store by polybuild's exporters."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, BinaryIO, TextIO

from polybuild import exporters
from polybuild.builders import Builder, Node
from polybuild.dockerfile import graph_dump
from polybuild.exporters.base import ExportContext
from polybuild.exporters.export import ExportResult, check_outputs
from polybuild.image import ImageStore
from polybuild.image.platform_image import ExportSource, PlatformImage, Predicate
from polybuild.imagebuild.advice import METADATA_KEY as ADVICE_KEY
from polybuild.imagebuild.advice import build_advice, render_advice
from polybuild.imagebuild.base_pulls import BaseImagePuller
from polybuild.imagebuild.build_history import recording
from polybuild.imagebuild.build_reports import write_reports
from polybuild.imagebuild.check_call import warn_build
from polybuild.imagebuild.driver import (
    Driver,
    LocalDriver,
    NodeBuild,
    build_on_nodes,
    driver_for,
    plan,
)
from polybuild.imagebuild.export_steps import export_reported
from polybuild.imagebuild.pins import Pins
from polybuild.imagebuild.pipeline import convert_all
from polybuild.imagebuild.reproducible import Checked, check_reproducible
from polybuild.imagebuild.request import BuildRequest, BuildResult
from polybuild.progress import make_renderer
from polybuild.progress.writer import Fanout, ProgressWriter
from polybuild.runtime import Runtime


async def _push(content: Any, target: Any, refs: Any, /, *, docker_media_types: bool) -> Any:
    """polybuild.registry.push, imported only when a build pushes (httpx is slow to import)."""
    from polybuild.registry.transfer import push

    return await push(content, target, refs, docker_media_types=docker_media_types)


def _remote(runtime: Runtime, pins: Pins) -> Any:
    """How an ssh node's or a BuildKit daemon's driver is made (their protocols are imported
    only when one is used); the build's ssh nodes share its pinned FROM references."""

    def make(node: Node) -> Driver:
        if node.is_buildkit:
            from polybuild.imagebuild.buildkit_driver import BuildKitDriver

            return BuildKitDriver(node, runtime.store)
        from polybuild.imagebuild.remote_driver import RemoteDriver

        return RemoteDriver(node, runtime, pins)

    return make


async def build_stored(
    request: BuildRequest,
    builder: Builder,
    *,
    stderr: TextIO,
    stdout: BinaryIO,
    runtime: Runtime | None,
) -> BuildResult:
    """Build as `polybuild build` does, on one event loop: base images resolved together,
    every platform solved together, then each output written; progress on `stderr`."""
    err = stderr
    runtime = runtime or Runtime()
    runtime.cleanup_stale()
    store = runtime.store

    # while the tty view is live, a warning is printed above it (else the next frame would
    # draw over it)
    above: list[Callable[[str], None]] = []

    def warn(message: str) -> None:
        (above[-1] if above else err.write)(f"WARNING: {message}\n")

    export_context = ExportContext(
        stdout=stdout,
        warn=warn,
        store=store,
        pusher=_push,
        source_date_epoch=request.source_date_epoch,
    )
    check_outputs(request.outputs, export_context)
    puller = BaseImagePuller(asyncio.get_running_loop())
    try:
        return await _build(request, builder, err, runtime, export_context, puller, above)
    finally:
        await puller.aclose()


async def _build(
    request: BuildRequest,
    builder: Builder,
    err: TextIO,
    runtime: Runtime,
    export_context: ExportContext,
    puller: BaseImagePuller,
    above: list[Callable[[str], None]],
) -> BuildResult:
    store = runtime.store
    warn = export_context.warn
    local = LocalDriver(runtime, puller)
    remote = _remote(runtime, Pins(warn=warn))
    drivers = driver_for(local, remote)
    planned = await plan(request, builder, drivers, warn)
    if request.call == "graph":  # --print graph: polybuild's graph dump, nothing built
        converted = await convert_all(request, runtime, puller)
        text = "\n".join(graph_dump(graph) for graph in converted.graphs)
        err.write(text if text.endswith("\n") else text + "\n")
        return BuildResult(None, (), (), outline=text)
    with recording(request, builder, runtime.root, warn) as outcome:
        outcome.planned = planned
        recorder = outcome.recorder
        shown = make_renderer(
            request.progress,
            err,
            instance=(builder.name, builder.driver),
            nodes=[(p.driver.vertex_prefix, p.driver.label) for p in planned],
        )
        print_above = getattr(shown, "print_above", None)
        if print_above is not None:
            above.append(print_above)
        writer = ProgressWriter(Fanout(shown, recorder))
        checked: list[Checked] = []
        try:
            warn_build(request, writer)  # BuildKit lints before it solves
            with runtime.in_use(), store.lease():
                started = _now()
                built = await build_on_nodes(request, planned, writer)
                finished = _now()
                if request.check_reproducible:
                    unique = list({id(d): d for d in map(drivers, builder.nodes)}.values())
                    checked = await check_reproducible(
                        request, planned, unique, built, store.content, writer, _label
                    )
                if built.fetch is not None:
                    from polybuild.imagebuild.cache_flow import ensure_layers

                    await ensure_layers(request, built.images, store.content, built.fetch)
                predicates = await _attestations(request, built, store, started, finished)
                results = await _export(
                    list(built.images), request, export_context, writer, predicates
                )
                if request.cache_to and all(p.driver.cache_format == "polybuild" for p in planned):
                    # BuildKit daemons export their own; polybuild nodes' records go out once.
                    from polybuild.imagebuild.cache_flow import export_build_cache

                    await export_build_cache(
                        request, built.records, built.images, store.content, writer, built.fetch
                    )
        finally:
            writer.close()
            above.clear()  # the display is done: warnings go to the stream again
        for line in (c.line() for c in checked):
            err.write(line + "\n")
        assembled = results[0].image if results else None
        outcome.image_digest = str(assembled.target.digest) if assembled is not None else ""
        advice = build_advice(
            request, planned, recorder.events, runtime.root, outcome.dockerfile_source
        )
        if not request.outputs:
            warn(exporters.NO_OUTPUT_WARNING)
        if assembled is not None and request.iidfile:
            exporters.write_iidfile(request.iidfile, assembled)
        if request.metadata_file:  # also with no image output, as buildx writes it
            names = [name for r in results for name in r.output.names]
            data = exporters.metadata(assembled, names) if assembled is not None else {}
            if advice:
                data[ADVICE_KEY] = [a.to_json() for a in advice]
            exporters.write_metadata_file(request.metadata_file, data)
    write_reports(err, request, planned, recorder.events)
    if request.progress != "quiet":
        err.write(render_advice(advice))
    return BuildResult(
        index=assembled.target if assembled is not None else None,
        images=built.images,
        executed=built.executed,
        emulated_seconds=built.emulated_seconds,
    )


def _label(driver: Driver) -> str:
    return driver.label


def _now() -> datetime:
    return datetime.now(UTC)


async def _attestations(
    request: BuildRequest,
    built: NodeBuild,
    store: ImageStore,
    started: datetime,
    finished: datetime,
) -> tuple[Predicate, ...]:
    """The provenance and SBOM predicates the request asks for (its outputs decide which
    they carry); nothing is made for a build without outputs."""
    asked = request.attestations
    if not request.outputs or not asked.any:
        return ()
    from polybuild.history.record import new_ref
    from polybuild.imagebuild.attestations import provenance_predicates, sbom_predicates

    out: tuple[Predicate, ...] = ()
    if asked.sbom is not None:  # BuildKit's order: the scanner's, then the provenance
        epoch = request.source_date_epoch
        created = datetime.fromtimestamp(epoch, UTC) if epoch is not None else finished
        out += await asyncio.to_thread(
            sbom_predicates,
            store.content,
            built.images,
            created=created.replace(microsecond=0),
            scanned=built.scanned,
        )
    if asked.provenance is not None:
        out += provenance_predicates(
            request,
            asked.provenance,
            built.images,
            built.bases,
            started=started,
            finished=finished,
            invocation_id=new_ref(),
        )
    return out


async def _export(
    images: list[PlatformImage],
    request: BuildRequest,
    context: ExportContext,
    progress: ProgressWriter,
    predicates: tuple[Predicate, ...] = (),
) -> list[ExportResult]:
    if not request.outputs or context.store is None:
        return []
    source = ExportSource(context.store.content, tuple(images), multi_platform(request), predicates)
    return await export_reported(source, request.outputs, context, progress)


def multi_platform(request: BuildRequest) -> bool:
    """`--build-arg BUILDKIT_MULTI_PLATFORM=1` asks for an index even for one platform, as
    buildx passes it to BuildKit (true, 1, t... as Go's ParseBool)."""
    value = request.build_args.get("BUILDKIT_MULTI_PLATFORM", "")
    return value.lower() in ("1", "t", "true")


__all__ = ["build_stored"]
