"""BuildKit's error details of a failed build: the google.rpc.Status trailer with its JSON
details (errdefs.Source, Vertex, gatewayapi.ExitMessage) read into a BuildFailure and shown
as BuildKit's client shows them; crafted, truncated and garbage details never raise; and on
a real buildkitd, a failing RUN and an unknown instruction show the Dockerfile's lines."""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import any_pb2

from polybuild.buildkit._grpc import grpc  # first: it quiets gRPC's own stderr logging
from polybuild.buildkit._proto import status_pb2
from polybuild.buildkit.errdetails import (
    EXIT_TYPE,
    MAX_EXCERPT_LINES,
    SOURCE_TYPE,
    STATUS_TRAILER,
    VERTEX_TYPE,
    BuildFailure,
    failure_of,
    parse_failure,
)
from polybuild.errors import SolveFailedError, StepFailedError
from tests.buildkit.conftest import BuildkitDaemon
from tests.conftest import import_busybox, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixture)

MESSAGE = 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'
DOCKERFILE = "FROM busybox\nCOPY . /ctx\nRUN exit 3\n"
STACK_TYPE = "github.com/moby/buildkit/stack.Stack+json"


def source_json(data: str, *ranges: tuple[int, int], filename: str = "Dockerfile") -> bytes:
    """An errdefs.Source as BuildKit's daemon encodes it (Go's encoding/json of the struct:
    bytes in base64, zero values left out, the definition a JSON object)."""
    info = {
        "filename": filename,
        "data": base64.b64encode(data.encode()).decode(),
        "definition": {"def": ["WgAa"], "metadata": {"sha256:00": {"caps": {"x": True}}}},
        "language": "Dockerfile",
    }
    encoded = [
        {"start": {"line": start}, "end": {"line": end, "character": 7}} for start, end in ranges
    ]
    return json.dumps({"info": info, "ranges": encoded}).encode()


def status(*details: tuple[str, bytes], message: str = MESSAGE) -> bytes:
    return status_pb2.Status(
        code=2,
        message=message,
        details=[any_pb2.Any(type_url=url, value=value) for url, value in details],
    ).SerializeToString()


def trailers(*details: tuple[str, bytes]) -> list[tuple[str, bytes]]:
    return [(STATUS_TRAILER, status(*details))]


def failed_run() -> list[tuple[str, bytes]]:
    """What buildkitd v0.32.2 sends for DOCKERFILE's failing RUN (as captured from it)."""
    return trailers(
        (STACK_TYPE, b'{"frames":[{"Name":"main","File":"x.go","Line":1}],"pid":1}'),
        (SOURCE_TYPE, source_json(DOCKERFILE, (3, 3))),
        (VERTEX_TYPE, b'{"digest":"sha256:55227bf61d7f28d891b0190c991e22421b95d72a3c8a3186"}'),
        (EXIT_TYPE, b'{"Code":3}'),
    )


# ---- decoding and layout ------------------------------------------------------------------


def test_a_failed_run_shows_buildkits_excerpt_and_message() -> None:
    failure = parse_failure(MESSAGE, failed_run())
    assert failure.exit_code == 3
    assert failure.vertex == "sha256:55227bf61d7f28d891b0190c991e22421b95d72a3c8a3186"
    # BuildKit pads a single line with up to 4 lines around it; the empty line after the
    # last newline counts as one.
    assert failure.render() == (
        "Dockerfile:3\n"
        "--------------------\n"
        "   1 |     FROM busybox\n"
        "   2 |     COPY . /ctx\n"
        "   3 | >>> RUN exit 3\n"
        "   4 |     \n"
        "--------------------\n"
        f"ERROR: {MESSAGE}\n"
    )
    assert failure.report() == MESSAGE + "\n" + failure.render().rsplit("ERROR:", 1)[0].rstrip()


def test_a_failed_run_is_the_step_failure_the_cli_prints_as_buildx() -> None:
    failure = parse_failure(MESSAGE, failed_run())
    error = failure.error("on node bk")
    assert type(error) is StepFailedError  # an exit code: a process (RUN) failed
    assert (str(error), error.hint, error.lines) == (MESSAGE, "on node bk", (3, 3))
    assert error.excerpt == failure.render().rsplit("ERROR:", 1)[0]
    refused = parse_failure(
        "dockerfile parse error", trailers((SOURCE_TYPE, source_json("X\n", (1, 1))))
    )
    assert type(refused.error()) is SolveFailedError and refused.error().excerpt.startswith(
        "Dockerfile:1\n"
    )
    assert parse_failure("no details", None).error().excerpt == ""


def test_a_range_of_lines_is_marked_whole_with_less_context() -> None:
    text = "".join(f"LINE {n}\n" for n in range(1, 21))
    (excerpt,) = parse_failure("x", trailers((SOURCE_TYPE, source_json(text, (8, 10))))).excerpts
    assert (excerpt.filename, excerpt.line, excerpt.first) == ("Dockerfile", 8, 7)
    assert excerpt.lines == ("LINE 7", "LINE 8", "LINE 9", "LINE 10", "LINE 11")
    shown = excerpt.render().splitlines()
    assert shown[0] == "Dockerfile:8"
    assert [line[5:10] for line in shown[2:-1]] == ["|    ", "| >>>", "| >>>", "| >>>", "|    "]


def test_at_the_files_edges_a_turn_counts_even_when_no_line_is_added() -> None:
    text = "".join(f"L{n}\n" for n in range(1, 21))
    (top,) = parse_failure("x", trailers((SOURCE_TYPE, source_json(text, (1, 1))))).excerpts
    assert (top.first, top.lines) == (1, ("L1", "L2", "L3"))
    (bottom,) = parse_failure("x", trailers((SOURCE_TYPE, source_json("A\nB\nC", (3, 3))))).excerpts
    assert (bottom.first, bottom.lines) == (1, ("A", "B", "C"))


def test_several_sources_are_shown_in_the_daemons_order() -> None:
    first = source_json("FROM a\nRUN x\n", (2, 2), filename="Dockerfile")
    second = source_json("FROM b\n", (1, 1), filename="other.Dockerfile")
    failure = parse_failure("x", trailers((SOURCE_TYPE, first), (SOURCE_TYPE, second)))
    assert [e.filename for e in failure.excerpts] == ["Dockerfile", "other.Dockerfile"]
    assert failure.render().index("Dockerfile:2") < failure.render().index("other.Dockerfile:1")


def test_a_range_outside_the_file_or_no_range_shows_no_excerpt() -> None:
    for ranges in [((9, 9),), ((0, 1),), ((-3, 2),), ()]:
        detail = (SOURCE_TYPE, source_json(DOCKERFILE, *ranges))
        failure = parse_failure(MESSAGE, trailers(detail))
        assert failure == BuildFailure(MESSAGE), ranges
        assert failure.render() == f"ERROR: {MESSAGE}\n"


def test_an_end_past_the_file_is_cut_and_a_huge_range_is_bounded() -> None:
    (short,) = parse_failure("x", trailers((SOURCE_TYPE, source_json("A\nB", (2, 90))))).excerpts
    assert (short.first, short.lines) == (1, ("A", "B"))
    text = "RUN \\\n" * 5000 + "  true\n"
    (long,) = parse_failure("x", trailers((SOURCE_TYPE, source_json(text, (1, 5001))))).excerpts
    assert len(long.lines) == MAX_EXCERPT_LINES


def test_control_characters_from_the_daemon_are_not_printed_raw() -> None:
    text = "FROM a\r\nRUN printf '\x1b[2J\x07'\tx\r\n"
    detail = source_json(text, (2, 2), filename="Docker\x1b]0;owned\x07file")
    failure = parse_failure("bad \x1b[31mthing\nsecond line", trailers((SOURCE_TYPE, detail)))
    shown = failure.render()
    assert "\x1b" not in shown and "\x07" not in shown and "\r" not in shown
    assert failure.message == "bad ?[31mthing?second line"
    assert failure.excerpts[0].filename == "Docker?]0;owned?file"
    assert "   2 | >>> RUN printf '?[2J?'  x\n" in shown  # tabs to 4-column stops


def test_a_very_long_line_or_message_is_cut() -> None:
    detail = source_json("RUN " + "y" * 10_000, (1, 1))
    failure = parse_failure("m" * 10_000, trailers((SOURCE_TYPE, detail)))
    assert len(failure.message) == 4000 and failure.message.endswith("...")
    assert len(failure.excerpts[0].lines[0]) == 400


# ---- hostile or broken details ----------------------------------------------------------


def test_no_trailer_or_unknown_details_leave_the_message() -> None:
    assert parse_failure(MESSAGE, None) == BuildFailure(MESSAGE)
    assert parse_failure(MESSAGE, []) == BuildFailure(MESSAGE)
    assert parse_failure(MESSAGE, [("other", b"x"), ("x", "y", "z")]) == BuildFailure(MESSAGE)
    unknown = trailers(("type.googleapis.com/x.Y", b"\x00\x01"), (STACK_TYPE, b"{}"))
    assert parse_failure(MESSAGE, unknown) == BuildFailure(MESSAGE)


@pytest.mark.parametrize(
    "value",
    [
        b"not protobuf \xff\xff\xff\xff\xff",
        "a str, not bytes",
        b"\x1a\xff\xff\xff\xff\x0f",  # a details field longer than the message
    ],
)
def test_an_undecodable_status_leaves_the_message(value: Any) -> None:
    assert parse_failure(MESSAGE, [(STATUS_TRAILER, value)]) == BuildFailure(MESSAGE)


def test_every_truncation_of_a_real_status_decodes_or_falls_back() -> None:
    whole = failed_run()[0][1]
    for end in range(len(whole)):
        failure = parse_failure(MESSAGE, [(STATUS_TRAILER, whole[:end])])
        assert failure.message == MESSAGE
        assert failure.exit_code in (None, 3)


def test_random_corruption_never_raises() -> None:
    whole = bytearray(failed_run()[0][1])
    chance = random.Random(1203)
    for _ in range(2000):
        broken = bytearray(whole)
        for _ in range(chance.randint(1, 8)):
            broken[chance.randrange(len(broken))] = chance.randrange(256)
        failure = parse_failure(MESSAGE, [(STATUS_TRAILER, bytes(broken))])
        assert failure.message == MESSAGE
        for excerpt in failure.excerpts:
            assert all(line.isprintable() for line in excerpt.lines)


@pytest.mark.parametrize(
    "value",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"a string"',
        b'{"info": {"filename": "D", "data": "!!not base64!!"}, "ranges": [{"start": {}}]}',
        b'{"info": {"filename": 7, "data": ""}, "ranges": []}',
        b'{"info": "x", "ranges": [{"start": {"line": "three"}}]}',
        b'{"info": {"data": "QQ=="}, "ranges": [{"start": {"line": 99999999999}}]}',
        b'{"info": {"data": "QQ=="}, "ranges": {"start": 1}}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"info": ' * 50 + b"{}" + b"}" * 50,
    ],
)
def test_a_bad_source_detail_is_skipped(value: bytes) -> None:
    detail = [(SOURCE_TYPE, value), (EXIT_TYPE, b'{"Code": 5}')]
    assert parse_failure(MESSAGE, trailers(*detail)) == BuildFailure(MESSAGE, exit_code=5)


@pytest.mark.parametrize(
    "value", [b'{"Code": -1}', b'{"Code": 4294967296}', b'{"Code": "x"}', b"{", b"7"]
)
def test_a_bad_exit_detail_is_skipped(value: bytes) -> None:
    assert parse_failure(MESSAGE, trailers((EXIT_TYPE, value))) == BuildFailure(MESSAGE)


def test_an_oversized_detail_is_not_decoded() -> None:
    huge = source_json("RUN x\n" + "#" * (9 << 20), (1, 1))
    assert parse_failure(MESSAGE, trailers((SOURCE_TYPE, huge))) == BuildFailure(MESSAGE)


def test_status_is_google_rpc_status_on_the_wire() -> None:
    # google/rpc/status.proto: code = 1 (varint), message = 2, details = 3 (Any: type_url
    # = 1, value = 2).
    encoded = status((EXIT_TYPE[:3], b"v"), message="m")
    assert encoded == b"\x08\x02\x12\x01m\x1a\x08\n\x03git\x12\x01v"


# ---- from a gRPC error ------------------------------------------------------------------


def test_from_a_grpc_error_and_from_anything_else() -> None:
    error = grpc.aio.AioRpcError(
        grpc.StatusCode.UNKNOWN,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(*failed_run()),
        details=MESSAGE,
    )
    failure = failure_of(error, "fallback")
    assert (failure.message, failure.exit_code) == (MESSAGE, 3)
    assert failure.excerpts[0].line == 3
    assert failure_of(None, "fallback") == BuildFailure("fallback")
    assert failure_of(ValueError("x"), "fallback") == BuildFailure("fallback")
    no_details = grpc.aio.AioRpcError(grpc.StatusCode.UNKNOWN, None, None)
    assert failure_of(no_details, "fallback") == BuildFailure("fallback")


# ---- against a real daemon ----------------------------------------------------------------


@pytest.fixture(scope="module")
def daemon_builder(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Path, str]]:
    """A client data root with a builder `bkerr` whose node is a daemon that pulls busybox
    from the test registry; the base image's name."""
    require_root()
    root = tmp_path_factory.mktemp("bk-errors") / "root"
    base = f"{registry.host}/library/busybox:latest"
    import_busybox(root, ("amd64",), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    created = run_cli(root, "create", "--name", "bkerr", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    yield root, base


def build_on_daemon(root: Path, ctx: Path, dockerfile: str) -> tuple[int, str]:
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    out = ctx.parent / "out.tar"
    done = run_cli(root, "build", "--builder", "bkerr", "--platform", "linux/amd64",
                   "--progress", "plain", "-o", f"type=oci,dest={out}", str(ctx))  # fmt: skip
    assert not out.exists()
    return done.returncode, done.stderr


@pytest.mark.root
@pytest.mark.integration
def test_a_failing_run_on_a_daemon_shows_the_dockerfile_lines_and_exit_code(
    daemon_builder: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = daemon_builder
    dockerfile = f"FROM {base}\n# \x1b[31m a comment\nRUN echo doomed; \\\n  exit 3\nRUN true\n"
    code, stderr = build_on_daemon(root, tmp_path / "ctx", dockerfile)
    assert code == 1, stderr
    message = (
        'process "/bin/sh -c echo doomed;   exit 3" did not complete successfully: exit code: 3'
    )
    assert "------\nDockerfile:3\n" in stderr, stderr  # after the failed step's block
    assert f"\nERROR: failed to build: failed to solve: {message}\n" in stderr, stderr
    assert "hint: the build ran on BuildKit node bkerr0 (unix://" in stderr, stderr
    assert (
        "--------------------\n"
        "   2 |     # ?[31m a comment\n"
        "   3 | >>> RUN echo doomed; \\\n"
        "   4 | >>>   exit 3\n"
        "   5 |     RUN true\n"
        "--------------------\n"
    ) in stderr, stderr
    assert "\x1b" not in stderr


@pytest.mark.root
@pytest.mark.integration
def test_an_unknown_instruction_on_a_daemon_names_the_file_and_line(
    daemon_builder: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = daemon_builder
    code, stderr = build_on_daemon(root, tmp_path / "ctx", f"FROM {base}\nRUNN echo\n")
    assert code == 1, stderr
    assert (
        "Dockerfile:2\n"
        "--------------------\n"
        f"   1 |     FROM {base}\n"
        "   2 | >>> RUNN echo\n"
        "   3 |     \n"
        "--------------------\n"
        "ERROR: failed to build: failed to solve: dockerfile parse error on line 2: unknown "
        "instruction: RUNN (did you mean RUN?)\n"
    ) in stderr, stderr


@pytest.mark.root
@pytest.mark.integration
def test_a_large_dockerfiles_error_still_arrives(
    daemon_builder: tuple[Path, str], tmp_path: Path
) -> None:
    # The details hold the whole Dockerfile (twice, in base64 and in its LLB): with gRPC's
    # default 8 KiB trailer limit the client saw only "Stream removed".
    root, base = daemon_builder
    comment = "# " + "x" * 40_000 + "\n"
    code, stderr = build_on_daemon(root, tmp_path / "ctx", f"{comment}FROM {base}\nRUNN echo\n")
    assert code == 1, stderr
    assert "unknown instruction: RUNN" in stderr and "   3 | >>> RUNN echo\n" in stderr, stderr
    assert "Stream removed" not in stderr
