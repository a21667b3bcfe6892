"""Events into step records (output bounded), names as buildx gives them, filters, and the
ls / inspect / logs formats."""

from __future__ import annotations

import io
import json

import pytest

from polybuild.cli.history import ls_output
from polybuild.errors import UsageError
from polybuild.history import (
    CANCELED,
    COMPLETED,
    ERROR,
    BuildRecord,
    NodeRecord,
    build_name,
    capture_steps,
)
from polybuild.history.filters import apply_filters, go_duration
from polybuild.history.replay import replay_events
from polybuild.history.show import (
    format_duration,
    human_duration,
    inspect_json,
    inspect_text,
    ls_json,
)
from polybuild.platforms import parse
from polybuild.progress import PlainRenderer
from polybuild.progress.events import (
    BuildWarning,
    VertexCompleted,
    VertexLog,
    VertexStarted,
    VertexStatus,
)

ARM64 = parse("linux/arm64")
NODES = (
    NodeRecord("this machine", ("linux/amd64",)),
    NodeRecord("arm (ssh://pi)", ("linux/arm64",), "arm/"),
)


def events() -> list[object]:
    return [
        VertexStarted("sha256:a", "[1/2] RUN make", 10.0, parse("linux/amd64")),
        VertexLog("sha256:a", b"x" * 100, 10.5),
        VertexLog("sha256:a", b"y" * 100 + b"\nlast\n", 10.6, 2),
        VertexCompleted("sha256:a", 12.0),
        VertexStarted("arm/sha256:b", "[arm 2/2] RUN make", 10.0, ARM64, True),
        VertexStatus("arm/sha256:b", "pull", 10.1, 5, 10, "pulling"),
        VertexCompleted("arm/sha256:b", 11.0, error="exit code: 2"),
        VertexStarted("sha256:c", "[2/2] COPY . .", 13.0),
        BuildWarning("legacy syntax", 9.0, url="https://docs"),
    ]


def test_steps_keep_platform_node_flags_and_the_tail_of_their_output() -> None:
    steps, warnings = capture_steps(events(), NODES, log_limit=50)  # type: ignore[arg-type]
    first, second, third = steps
    assert (first.platform, first.node, first.completed, first.error) == (
        "linux/amd64",
        "this machine",
        12.0,
        "",
    )
    kept = b"".join(c.data for c in first.logs)
    assert kept == (b"y" * 100 + b"\nlast\n")[-50:]
    assert first.clipped == 206 - 50
    assert first.logs[-1].stream == 2
    assert (second.node, second.emulated, second.error) == ("arm (ssh://pi)", True, "exit code: 2")
    assert second.statuses[0].current == 5
    assert third.completed is None  # the build ended while it ran
    assert [w.message for w in warnings] == ["legacy syntax"]


@pytest.mark.parametrize(
    ("context", "dockerfile", "target", "name"),
    [
        ("/src/app", "/src/app/Dockerfile", "", "app"),
        ("/src/app", "/src/app/Dockerfile", "release", "app (release)"),
        ("/src/app", "/src/app/docker/Dockerfile.dev", "", "app/docker/Dockerfile.dev"),
        ("/src/app", "/other/Dockerfile.dev", "", "other/Dockerfile.dev"),
        ("/src/app", "-", "", "app"),
        ("https://github.com/a/b.git#main", "", "", "https://github.com/a/b.git#main"),
    ],
)
def test_build_names_as_buildx(context: str, dockerfile: str, target: str, name: str) -> None:
    assert build_name(context, dockerfile, target) == name


def test_build_name_argument_wins() -> None:
    assert build_name("/src/app", "", "", {"BUILDKIT_BUILD_NAME": "mine"}) == "mine"


def make(
    ref: str, started: float, status: str = COMPLETED, name: str = "app", **more: object
) -> BuildRecord:
    steps, warnings = capture_steps(events(), NODES)  # type: ignore[arg-type]
    fields: dict[str, object] = {
        "ref": ref.ljust(25, "0"),
        "name": name,
        "builder": "default",
        "node_name": "default0",
        "started": started,
        "completed": started + 75.5,
        "status": status,
        "steps": steps,
        "warnings": warnings,
        **more,
    }
    return BuildRecord(**fields)  # type: ignore[arg-type]


def test_filters() -> None:
    records = [make("a", 1000.0), make("b", 5000.0, ERROR), make("c", 9000.0, CANCELED)]
    refs = lambda found: [r.ref[0] for r in found]  # noqa: E731
    assert refs(apply_filters(records, ["status=error"], 10000.0)) == ["b"]
    assert refs(apply_filters(records, ["status!=completed"], 10000.0)) == ["b", "c"]
    assert refs(apply_filters(records, ["startedAt>2h"], 10000.0)) == ["b", "c"]
    assert refs(apply_filters(records, ["startedAt<2h"], 10000.0)) == ["a"]
    assert refs(apply_filters(records, ["duration>1m"], 10000.0)) == ["a", "b", "c"]
    assert refs(apply_filters(records, ["duration<1m"], 10000.0)) == []
    with pytest.raises(UsageError, match='invalid separator for "status>x"'):
        apply_filters(records, ["status>x"], 0.0)
    with pytest.raises(UsageError, match='unsupported filter "name=x"'):
        apply_filters(records, ["name=x"], 0.0)
    assert go_duration("1h30m") == 5400.0 and go_duration("soon") is None


def test_durations_as_buildx_and_docker_print_them() -> None:
    assert format_duration(4.25) == "4.2s"
    assert format_duration(75.5) == "1m 15s"
    assert format_duration(3605) == "60m  5s"
    assert human_duration(0.4) == "Less than a second"
    assert human_duration(42) == "42 seconds"
    assert human_duration(90) == "About a minute"
    assert human_duration(3 * 3600) == "3 hours"
    assert human_duration(3 * 86400) == "3 days"


def test_ls_table_and_json() -> None:
    long_name = "a-rather-long-context-directory-name-that-goes-on"
    records = [make("b", 900.0, ERROR), make("a", 100.0, name=long_name)]
    table = ls_output(records, 1000.0)
    # Go's tabwriter pads the DURATION cell before the empty link column
    assert table.splitlines() == [
        "BUILD ID                    NAME                                   STATUS      "
        "CREATED AT           DURATION   ",
        "b000000000000000000000000   app                                    Error       "
        "About a minute ago   1m 15s     ",
        "a000000000000000000000000   ..ontext-directory-name-that-goes-on   Completed   "
        "15 minutes ago       1m 15s     ",
    ]
    assert long_name in ls_output(records, 1000.0, trunc=False)
    line = json.loads(ls_json(records[0]))
    assert line == {
        "cached_steps": 0,
        "completed_at": "1970-01-01T00:16:15.5Z",
        "completed_steps": 1,
        "created_at": "1970-01-01T00:15:00Z",
        "name": "app",
        "ref": "default/default0/b000000000000000000000000",
        "status": "Error",
        "total_steps": 3,
    }


def test_inspect_text_and_json() -> None:
    record = make(
        "e",
        100.0,
        ERROR,
        error="process did not complete successfully: exit code: 2\n  > detail",
        context="/work/app",
        dockerfile="/work/app/Dockerfile",
        target="release",
        platforms=("linux/amd64", "linux/arm64"),
        options={"build-arg:A": "1", "no-cache": "", "label:k": "v"},
        image_digest="",
    )
    text = inspect_text(record, show_ref=True, cwd="/work")
    assert "Name:\t\tapp\nRef:\t\te000000000000000000000000\nContext:\tapp\n" in text
    assert "Dockerfile:\tDockerfile\nTarget:\t\trelease\n" in text
    assert "Platforms:\tlinux/amd64, linux/arm64\n" in text
    assert "Duration:\t1m 15s\n" in text
    assert "Error:\t\tUnknown process did not complete successfully: exit code: 2\n" in text
    assert "Build Steps:\t1/3 (0% cached)\n" in text
    assert "No Cache:\ttrue\n" in text
    assert "BUILD ARG\tVALUE\nA\t\t1\n" in text
    assert "LABEL\tVALUE\nk\tv\n" in text
    assert text.endswith("Print build logs: polybuild history logs e000000000000000000000000\n")
    data = inspect_json(record, "/elsewhere")
    assert data["Status"] == "failed"
    assert data["Context"] == "/work/app" and data["Dockerfile"] == "Dockerfile"
    assert data["Error"]["Code"] == 2
    assert data["Error"]["Name"] == "[arm 2/2] RUN make"  # the step whose error failed it
    assert data["Config"] == {"NoCache": True}
    assert data["BuildArgs"] == [{"Name": "A", "Value": "1"}]
    assert data["Duration"] == 75_500_000_000
    assert [s["Node"] for s in data["Steps"]] == ["this machine", "arm (ssh://pi)", "this machine"]
    canceled = inspect_text(make("c", 1.0, CANCELED), show_ref=False)
    assert "Status:\t\tCanceled\n" in canceled and "Ref:" not in canceled


def test_logs_replay_through_the_plain_renderer() -> None:
    record = make("a", 10.0)
    out = io.StringIO()
    renderer = PlainRenderer(out)
    for event in replay_events(record):
        renderer.emit(event)
    renderer.close()
    text = out.getvalue()
    assert "[1/2] RUN make" in text and "last" in text
    assert "ERROR: exit code: 2" in text or "exit code: 2" in text
    assert "[2/2] COPY . ." in text
