"""The hook that records every build in the data root's history (history/): the request's
non-secret options, the planned nodes, the recorded progress events and how it ended.

    with recording(request, builder, root, warn) as outcome:
        outcome.planned = planned
        ...build...
        outcome.image_digest = "sha256:..."

Failures and cancellations are recorded too (the exception propagates unchanged);
recording itself never fails a build: a problem becomes one warning.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.builders import Builder
from polybuild.errors import PolybuildError
from polybuild.history import (
    CANCELED,
    COMPLETED,
    ERROR,
    BuildRecord,
    HistoryStore,
    NodeRecord,
    build_name,
    capture_steps,
    new_ref,
)
from polybuild.history.record import DOCKERFILE_SOURCE_LIMIT
from polybuild.imagebuild.driver import Planned
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import format_platform
from polybuild.progress.events import Event
from polybuild.progress.writer import Recorder

# Output and cache attributes that can carry credentials are never recorded.
_SECRET_ATTR = re.compile(r"token|secret|password|passwd|key|auth", re.IGNORECASE)


@dataclass(slots=True)
class Outcome:
    """What the build fills in while it runs (mutable on purpose: set as it goes)."""

    planned: Sequence[Planned] = ()
    recorder: Recorder = field(default_factory=Recorder)
    image_digest: str = ""
    record: BuildRecord | None = None  # set once the build ended and was recorded
    dockerfile_source: str = ""  # the Dockerfile's text as the build read it ("" unread)


def options(request: BuildRequest) -> dict[str, str]:
    """The request's non-secret options under buildx's frontend attribute names."""
    found: dict[str, str] = {}
    if request.target:
        found["target"] = request.target
    found["platform"] = ",".join(format_platform(p) for p in request.platforms)
    for key, value in request.build_args.items():
        found[f"build-arg:{key}"] = value
    for key, value in request.labels.items():
        found[f"label:{key}"] = value
    if request.no_cache:
        found["no-cache"] = ""
    elif request.no_cache_filter:
        found["no-cache"] = ",".join(request.no_cache_filter)
    if request.pull:
        found["image-resolve-mode"] = "pull"
    if request.network != "default":
        found["force-network-mode"] = request.network
    if request.entitlements:
        found["entitlements"] = ",".join(sorted(request.entitlements))
    for named in request.build_contexts:
        found[f"context:{named.name}"] = named.value
    for flag, specs in (("cache-from", request.cache_from), ("cache-to", request.cache_to)):
        if specs:
            found[flag] = ";".join(_public(str(spec)) for spec in specs)
    if request.call != "build":
        found["call"] = request.call
    return found


def _public(spec: str) -> str:
    """A `k=v,...` value without the fields whose names say they hold a credential."""
    parts = [p for p in spec.split(",") if not _SECRET_ATTR.search(p.partition("=")[0])]
    return ",".join(parts)


def _outputs(request: BuildRequest) -> tuple[str, ...]:
    described = []
    for output in request.outputs:
        text = f"type={output.type}"
        if output.dest is not None:
            text += f",dest={output.dest}"
        if output.names:
            text += ",name=" + ",".join(str(n) for n in output.names)
        if output.push:
            text += ",push=true"
        described.append(text)
    return tuple(described)


def dockerfile_source(request: BuildRequest) -> str:
    """The Dockerfile's text as the build reads it; "" when unreadable, too large or binary."""
    from polybuild.imagebuild.dockerfile_file import read_dockerfile

    try:
        data, _, _ = read_dockerfile(request)
    except (PolybuildError, OSError):
        return ""
    if len(data) > DOCKERFILE_SOURCE_LIMIT:
        return ""
    try:
        return data.decode()
    except UnicodeDecodeError:
        return ""


def make_record(
    request: BuildRequest,
    builder: Builder,
    planned: Sequence[Planned],
    events: Sequence[Event],
    *,
    started: float,
    completed: float,
    status: str,
    error: str = "",
    image_digest: str = "",
    source: str = "",
) -> BuildRecord:
    """The record of one finished build (pure: no I/O)."""
    # `-`, a git reference or a URL as typed (the local directory is a temporary copy)
    context = request.context_source or str(request.context.absolute())
    if request.dockerfile_text is not None:
        dockerfile = "-"
    elif request.dockerfile is not None:
        dockerfile = str(request.dockerfile.absolute())
    elif context == "-":
        dockerfile = "-"
    else:
        dockerfile = os.path.join(context, "Dockerfile")
    nodes = tuple(
        NodeRecord(
            p.driver.label, tuple(format_platform(x) for x in p.platforms), p.driver.vertex_prefix
        )
        for p in planned
    )
    steps, warnings = capture_steps(events, nodes)
    return BuildRecord(
        ref=new_ref(),
        name=build_name(context, dockerfile, request.target, request.build_args),
        builder=builder.name,
        node_name=builder.nodes[0].name if builder.nodes else "",
        started=started,
        completed=completed,
        status=status,
        context=context,
        dockerfile=dockerfile,
        dockerfile_source=source,
        target=request.target,
        platforms=tuple(format_platform(p) for p in request.platforms),
        nodes=nodes,
        options=options(request),
        outputs=_outputs(request),
        secrets=tuple(sorted(request.secrets.secrets)),
        ssh=tuple(sorted({*request.secrets.ssh, *request.secrets.ssh_keys})),
        error=error,
        image_digest=image_digest,
        steps=steps,
        warnings=warnings,
    )


def write_build_report(
    record: BuildRecord, path: Path, root: Path, warn: Callable[[str], None]
) -> None:
    """`--report`: the build's timeline report at `path`, with the earlier builds of the
    history (native twins) and QEMU's factors measured by `binfmt --bench`."""
    from polybuild.insight.factors import load_factors
    from polybuild.insight.report_file import write_report

    earlier = [r for r in HistoryStore(root, warn=warn).records() if r.ref != record.ref]
    write_report(record, path, history=earlier, factors=load_factors(root))


def _ending(exc: BaseException | None) -> tuple[str, str]:
    if exc is None:
        return COMPLETED, ""
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return CANCELED, "context canceled"
    if isinstance(exc, PolybuildError):
        return ERROR, exc.message
    return ERROR, str(exc) or type(exc).__name__


@contextlib.contextmanager
def recording(
    request: BuildRequest, builder: Builder, root: Path, warn: Callable[[str], None]
) -> Iterator[Outcome]:
    """Record the build run in the block, however it ends; never raises for the record.
    With --report, the record's report is written too: a failure to write it fails a build
    that succeeded, and is a warning after one that failed (its own error comes first)."""
    started = time.time()
    source = dockerfile_source(request)  # before the build: what it read, not a later edit
    outcome = Outcome(dockerfile_source=source)
    failure: BaseException | None = None
    try:
        yield outcome
    except BaseException as exc:
        failure = exc
        raise
    finally:
        status, message = _ending(failure)
        record: BuildRecord | None = None
        try:
            record = make_record(
                request,
                builder,
                outcome.planned,
                outcome.recorder.events,
                started=started,
                completed=time.time(),
                status=status,
                error=message,
                image_digest=outcome.image_digest,
                source=source,
            )
            HistoryStore(root, warn=warn).save(record)
            outcome.record = record
        except Exception as exc:  # a record is never worth a failed build
            warn(f"the build was not recorded in the history: {exc}")
        if record is not None and request.report is not None:
            try:
                write_build_report(record, request.report, root, warn)
            except Exception as exc:
                if failure is None:
                    raise
                # never instead of the build's own error
                warn(exc.message if isinstance(exc, PolybuildError) else f"--report: {exc}")


__all__ = ["Outcome", "make_record", "options", "recording", "write_build_report"]
