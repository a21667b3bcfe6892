"""BuildKit's account of a failed build, read from the failed call's gRPC status: its message,
the Dockerfile lines it points at and the step's exit code, shown as BuildKit's client does.

BuildKit (util/grpcerrors) puts typed details in the `grpc-status-details-bin` trailer, a
google.rpc.Status whose `details` are Anys holding Go's encoding/json of errdefs.Source,
errdefs.Vertex, gatewayapi.ExitMessage and stack traces (proto/errdefs.proto says more).
Everything in them comes from the daemon and is treated as hostile: sizes and counts are
bounded, a detail that does not decode is skipped (the plain message stays), and what is
shown has its control characters replaced (polybuild.remote.process.printable).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf import message as pb_message

from polybuild.buildkit._proto import errdefs_pb2, gateway_exit_pb2, status_pb2
from polybuild.errors import SolveFailedError, StepFailedError
from polybuild.remote.process import printable

STATUS_TRAILER = "grpc-status-details-bin"
# typeurl's names for the details BuildKit sends (github.com/moby/buildkit + the name
# each package registers, "+json": the value is JSON, not protobuf).
SOURCE_TYPE = "github.com/moby/buildkit/errdefs.Source+json"
VERTEX_TYPE = "github.com/moby/buildkit/errdefs.Vertex+json"
EXIT_TYPE = "github.com/moby/buildkit/gatewayapi.ExitMessage+json"

MAX_STATUS = 16 << 20  # the client's trailer limit (client.MAX_MESSAGE); more is not read
MAX_DETAILS = 64
MAX_DETAIL = 8 << 20  # a detail's JSON: a Source holds the Dockerfile in base64 and its LLB
MAX_SOURCES = 8
MAX_RANGES = 64
MAX_JSON_DEPTH = 32
MAX_EXCERPT_LINES = 100  # BuildKit shows a whole range; a step of thousands of lines is cut
MAX_LINE = 400  # characters shown of one line
MAX_MESSAGE = 4000
MAX_FILENAME = 200
RULE = "-" * 20

_M = TypeVar("_M", bound=pb_message.Message)


@dataclass(frozen=True, slots=True)
class Excerpt:
    """The lines of a source file around an error, printable: `first` is the number of
    `lines[0]`, `line` the first line the error covers (BuildKit's `Dockerfile:3`), `ranges`
    the (first, last) lines it covers, marked `>>>`."""

    filename: str
    line: int
    first: int
    lines: tuple[str, ...]
    ranges: tuple[tuple[int, int], ...]

    def covers(self, number: int) -> bool:
        return any(start <= number <= end for start, end in self.ranges)

    def render(self) -> str:
        """As BuildKit's client prints a source (errdefs.Source.Print): the file and line,
        a rule, each line numbered in 3 columns with `>>>` where the error is, a rule."""
        out = [f"{self.filename}:{self.line}", RULE]
        for number, text in enumerate(self.lines, self.first):
            marker = ">>>" if self.covers(number) else "   "
            out.append(f" {number:3d} | {marker} {text}")
        out.append(RULE)
        return "\n".join(out) + "\n"


@dataclass(frozen=True, slots=True)
class BuildFailure:
    """A failed build as the daemon described it: `message` (printable) is its error text,
    `excerpts` where in the Dockerfile, `exit_code` the failed process's, `vertex` the
    failed step's digest."""

    message: str
    excerpts: tuple[Excerpt, ...] = ()
    exit_code: int | None = None
    vertex: str | None = None

    def render(self) -> str:
        """The text BuildKit's client (buildx) prints: the excerpts, then `ERROR: message`."""
        return "".join(e.render() for e in self.excerpts) + f"ERROR: {self.message}\n"

    def error(self, hint: str | None = None) -> StepFailedError:
        """The error the CLI prints as buildx does (the excerpts, then `ERROR: failed to
        build: failed to solve: MESSAGE`): a StepFailedError when a process exited non-zero
        (a RUN), else a SolveFailedError; its `lines` the first range the daemon pointed at."""
        cls = StepFailedError if self.exit_code is not None else SolveFailedError
        error = cls(self.message, hint=hint)
        error.excerpt = "".join(excerpt.render() for excerpt in self.excerpts)
        if self.excerpts and self.excerpts[0].ranges:
            error.lines = self.excerpts[0].ranges[0]
        return error

    def report(self) -> str:
        """polybuild's order: the message first, then the excerpts (no trailing newline)."""
        return "\n".join([self.message, *(e.render().rstrip("\n") for e in self.excerpts)])


def failure_of(error: BaseException | None, fallback: str) -> BuildFailure:
    """The BuildFailure a failed gRPC call (a grpc.aio.AioRpcError, looked at through its
    `details()` and `trailing_metadata()`) describes; `fallback` is the message when
    `error` is not one."""
    details = _call(getattr(error, "details", None))
    trailers = _call(getattr(error, "trailing_metadata", None))
    message = details if isinstance(details, str) and details else fallback
    return parse_failure(message, trailers if isinstance(trailers, Iterable) else None)


def parse_failure(message: str, trailers: Iterable[Any] | None) -> BuildFailure:
    """The BuildFailure from a call's details string and its trailing metadata (pairs of
    key and value); anything that does not decode leaves just the message."""
    status = _status(trailers)
    excerpts: list[Excerpt] = []
    exit_code: int | None = None
    vertex: str | None = None
    for detail in status.details[:MAX_DETAILS] if status is not None else ():
        if len(detail.value) > MAX_DETAIL:
            continue
        if detail.type_url == SOURCE_TYPE and len(excerpts) < MAX_SOURCES:
            excerpt = _excerpt(detail.value)
            if excerpt is not None:
                excerpts.append(excerpt)
        elif detail.type_url == EXIT_TYPE:
            code = _decode(detail.value, gateway_exit_pb2.ExitMessage())
            exit_code = code.Code if code is not None else exit_code
        elif detail.type_url == VERTEX_TYPE:
            step = _decode(detail.value, errdefs_pb2.Vertex())
            vertex = printable(step.digest, 100) if step is not None and step.digest else vertex
    return BuildFailure(printable(message, MAX_MESSAGE), tuple(excerpts), exit_code, vertex)


def _call(method: Callable[[], object] | None) -> object:
    return method() if callable(method) else None


def _status(trailers: Iterable[Any] | None) -> status_pb2.Status | None:
    """The google.rpc.Status of the trailer, or None (none, too large, or undecodable)."""
    for item in trailers or ():
        if not (isinstance(item, tuple) and len(item) == 2 and item[0] == STATUS_TRAILER):
            continue
        value = item[1]
        if not isinstance(value, bytes) or len(value) > MAX_STATUS:
            return None
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except pb_message.DecodeError:
            return None
        return status
    return None


def _decode(value: bytes, into: _M) -> _M | None:
    """`into` filled from a detail's JSON (fields it does not declare ignored), or None."""
    try:
        data = json.loads(value)
    except (ValueError, RecursionError):  # invalid JSON or UTF-8, or nested too deep
        return None
    if not isinstance(data, dict):
        return None
    info = data.get("info")
    if isinstance(info, dict):
        # SourceInfo.definition is Go's JSON of a pb.Definition, not protobuf's of bytes.
        info.pop("definition", None)
    try:
        json_format.ParseDict(
            data, into, ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
        )
    except (json_format.ParseError, ValueError, TypeError, RecursionError):
        return None
    return into


def _excerpt(value: bytes) -> Excerpt | None:
    """An errdefs.Source as the lines BuildKit's client shows, or None where it shows none
    (no ranges, or they start outside the file)."""
    source = _decode(value, errdefs_pb2.Source())
    if source is None or not source.HasField("info") or not source.ranges:
        return None
    ranges = tuple(
        (r.start.line, max(r.start.line, r.end.line)) for r in source.ranges[:MAX_RANGES]
    )
    lines = source.info.data.decode("utf-8", errors="replace").split("\n")
    start = min(first for first, _ in ranges)
    end = min(max(last for _, last in ranges), len(lines))
    if not 1 <= start <= len(lines):
        return None
    first, last = _context(start, end, len(lines))
    last = min(last, first + MAX_EXCERPT_LINES - 1)
    return Excerpt(
        filename=printable(source.info.filename, MAX_FILENAME),
        line=start,
        first=first,
        lines=tuple(_shown(text) for text in lines[first - 1 : last]),
        ranges=ranges,
    )


def _context(start: int, end: int, count: int) -> tuple[int, int]:
    """The lines BuildKit shows around lines start..end of `count`: it takes turns adding
    one before and one after, each turn and each line added counting one towards its
    padding of 2 (4 for a single line)."""
    pad = 4 if start == end else 2
    used = 0
    while used < pad:
        if start > 1:
            start -= 1
            used += 1
        if end != count:
            end += 1
            used += 1
        used += 1
    return start, end


def _shown(text: str) -> str:
    """One line of the file for a terminal: a CRLF file's CR dropped, tabs as spaces, other
    control characters as `?`, cut at MAX_LINE characters."""
    return printable(text.removesuffix("\r").expandtabs(4), MAX_LINE)


__all__ = [
    "EXIT_TYPE",
    "SOURCE_TYPE",
    "STATUS_TRAILER",
    "VERTEX_TYPE",
    "BuildFailure",
    "Excerpt",
    "failure_of",
    "parse_failure",
]
