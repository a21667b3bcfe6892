"""The timeline report's data on synthetic records: queued times, the critical path, lanes per
platform and node, the slowest steps and their emulation factors, bytes moved, the cache hit
rate, the advisor's part, the JSON form, and the report file written whole or not at all."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from polybuild.errors import PolybuildError, UsageError
from polybuild.history.record import BuildRecord, NodeRecord, StatusRecord, StepRecord
from polybuild.insight.advisor import ESTIMATE, HISTORY, TWIN
from polybuild.insight.report_data import ALL_CACHED, SHARED_LANE, build_report, report_json
from polybuild.insight.report_file import write_report
from tests.insight.records import build_record

AMD, ARM = "linux/amd64", "linux/arm64"
T0 = 1_000.0
DOCKERFILE = "FROM busybox AS build\nRUN make\nFROM busybox\nCOPY --from=build /app /app\n"


def step(
    vertex: str,
    start: float,
    end: float | None,
    *,
    name: str = "",
    platform: str = AMD,
    inputs: tuple[str, ...] = (),
    **fields: object,
) -> StepRecord:
    return StepRecord(
        vertex=vertex,
        name=name or f"[{platform} {vertex}]",
        started=T0 + start,
        completed=None if end is None else T0 + end,
        platform=platform,
        node="this machine",
        inputs=inputs,
        **fields,  # type: ignore[arg-type]
    )


def record(*steps: StepRecord, **fields: object) -> BuildRecord:
    return build_record(T0, 20.0, *steps, **fields)


def bars(report_record: BuildRecord) -> dict[str, object]:
    report = build_report(report_record)
    return {bar.vertex: bar for lane in report.lanes for bar in lane.steps}


def test_queued_time_runs_from_the_last_input_done_to_the_start() -> None:
    found = bars(
        record(
            step("a", 0, 2),
            step("b", 0, 5),
            step("c", 7, 8, inputs=("a", "b")),  # ready at 5, started at 7
            step("d", 1, 3, inputs=("context",)),  # an input that is no step: not queued
            step("e", 1.5, 4, inputs=("a",)),  # started before its input ended (cache lookup)
        )
    )
    assert found["c"].queued == pytest.approx(2.0)  # type: ignore[attr-defined]
    assert found["c"].ready == pytest.approx(5.0)  # type: ignore[attr-defined]
    assert found["d"].queued == 0.0  # type: ignore[attr-defined]
    assert found["e"].queued == 0.0  # type: ignore[attr-defined]


def test_the_critical_path_follows_the_input_that_ended_last() -> None:
    built = record(
        step("base", 0, 1),
        step("short", 1, 2, inputs=("base",)),
        step("long", 1, 9, inputs=("base",)),
        step("final", 9, 10, inputs=("short", "long")),
        step("other", 0, 4, platform=ARM),  # no edges: not part of the graph's end
        step("export:0", 10, 12, name="exporting to image", platform=""),
    )
    report = build_report(built)
    # the export has no recorded inputs: it follows the graph's step that ended before it
    assert report.critical_path == ("base", "long", "final", "export:0")
    marked = {b.vertex for lane in report.lanes for b in lane.steps if b.critical}
    assert marked == {"base", "long", "final", "export:0"}
    without_export = record(*built.steps[:-1])
    assert build_report(without_export).critical_path == ("base", "long", "final")


def test_a_failed_build_s_path_ends_at_the_step_that_failed_not_a_canceled_one() -> None:
    built = record(
        step("base", 0, 1),
        step("arm", 1, 6, platform=ARM, inputs=("base",), error="exit code: 1"),
        step("amd", 1, 6.2, inputs=("base",), canceled=True, error="context canceled"),
        step("late", 2, None, inputs=("base",), canceled=True),  # "ends" with the build
        status="error",
        error="exit code: 1",
    )
    assert build_report(built).critical_path == ("base", "arm")


def test_an_unfinished_step_ends_with_the_build_and_cycles_stop() -> None:
    built = record(
        step("a", 0, 3, inputs=("b",)),
        step("b", 1, 5, inputs=("a",)),
        step("c", 1, None, inputs=("a",), canceled=True),
    )
    report = build_report(built)
    assert report.critical_path == ("a", "b")  # c never ended the build
    (bar,) = [b for lane in report.lanes for b in lane.steps if b.vertex == "c"]
    assert bar.end is None and bar.canceled


def test_lanes_per_platform_shared_steps_first_cross_steps_in_their_target() -> None:
    built = record(
        step("load", 0, 0.1, name="[internal] load build definition from Dockerfile", platform=""),
        step("arm", 0, 3, name=f"[{ARM} 2/2] RUN make", platform=ARM, emulated=True),
        step("amd", 0, 1, name=f"[{AMD} 2/2] RUN make"),
        step("x", 0, 1, name="[linux/amd64->arm64 build 2/2] RUN cc", platform=AMD),
    )
    report = build_report(built)
    assert [(lane.label, [b.vertex for b in lane.steps]) for lane in report.lanes] == [
        (SHARED_LANE, ["load"]),
        (AMD, ["amd"]),
        (ARM, ["x", "arm"]),  # by start, then name
    ]
    cross = report.lanes[2].steps[0]
    assert cross.cross and not cross.emulated


def test_several_nodes_get_a_lane_per_node_and_platform() -> None:
    built = record(
        StepRecord("a", f"[{AMD} 1/1] RUN x", T0, T0 + 1, platform=AMD, node="this machine"),
        StepRecord("b", f"[{ARM} 1/1] RUN x", T0, T0 + 1, platform=ARM, node="pi (ssh://pi)"),
        nodes=(NodeRecord("this machine", (AMD,)), NodeRecord("pi (ssh://pi)", (ARM,))),
    )
    labels = [lane.label for lane in build_report(built).lanes]
    assert labels == [f"{ARM} on pi (ssh://pi)", f"{AMD} on this machine"]


def test_the_slowest_steps_leave_out_cached_ones_and_carry_emulation_factors() -> None:
    run_arm = f"[{ARM} build 2/2] RUN make"
    built = record(
        step("emu", 0, 8, name=run_arm, platform=ARM, emulated=True),
        step("twin", 0, 1, name=run_arm.replace(ARM, AMD)),
        step("cached", 0, 30, name=f"[{AMD} 3/3] COPY . .", cached=True),
        step("short", 0, 0.5, name=f"[{AMD} 1/2] FROM busybox"),
        step("unfinished", 0, None, name=f"[{AMD} 4/4] RUN never"),
    )
    report = build_report(built, slowest=2)
    assert [(s.name, s.seconds) for s in report.slowest] == [
        (run_arm, pytest.approx(8.0)),
        (run_arm.replace(ARM, AMD), pytest.approx(1.0)),
    ]
    factor = report.slowest[0].factor
    assert factor is not None and (factor.value, factor.basis) == (pytest.approx(8.0), TWIN)
    assert report.slowest[1].factor is None  # native


def test_failed_and_canceled_steps_get_no_emulation_factor() -> None:
    awk = f"[{ARM} 2/2] RUN awk"
    built = record(
        step("twin", 0, 3, name=awk.replace(ARM, AMD)),
        step("v7", 0, 1.24, name=awk.replace(ARM, "linux/arm/v7"), platform="linux/arm/v7",
             emulated=True, canceled=True, error="context canceled"),
        step("arm", 0, 0.01, name=awk, platform=ARM, emulated=True, canceled=True),
        step("bad", 0, 5, name=f"[{ARM} 3/3] RUN false", platform=ARM, emulated=True,
             error="exit code: 1"),
        status="error",
    )  # fmt: skip
    for factors in (None, {ARM: 12.3, "linux/arm/v7": 13.0}):
        rows = {s.name: s for s in build_report(built, factors=factors).slowest}
        assert {name: (s.factor, s.outcome) for name, s in rows.items()} == {
            awk.replace(ARM, AMD): (None, ""),
            awk.replace(ARM, "linux/arm/v7"): (None, "canceled"),
            awk: (None, "canceled"),
            f"[{ARM} 3/3] RUN false": (None, "failed"),
        }
    data = report_json(build_report(built, factors={ARM: 12.3}))
    slowest = data["slowest"]
    assert isinstance(slowest, list)
    assert [(s["factor"], s["outcome"]) for s in slowest] == [
        (None, "failed"), (None, ""), (None, "canceled"), (None, "canceled")
    ]  # fmt: skip


def test_without_a_twin_an_earlier_build_then_qemus_factor_else_none() -> None:
    name = f"[{ARM} build 2/2] RUN make"
    alone = record(step("emu", 0, 9, name=name, platform=ARM, emulated=True))
    earlier = record(step("n", 0, 3, name=name.replace(ARM, AMD)))
    from_history = build_report(alone, history=[earlier]).slowest[0].factor
    assert from_history is not None
    assert (from_history.value, from_history.basis) == (pytest.approx(3.0), HISTORY)
    estimated = build_report(alone, factors={"linux/arm64": 6.5}).slowest[0].factor
    assert estimated is not None and (estimated.value, estimated.basis) == (6.5, ESTIMATE)
    assert build_report(alone, factors={"linux/s390x": 9.0}).slowest[0].factor is None


def test_bytes_pulled_sent_pushed_and_exported_come_from_the_statuses() -> None:
    blob = "sha256:" + "a" * 64

    def status(id_: str, current: int = 0, total: int = 0) -> StatusRecord:
        return StatusRecord(id_, T0, current, total)

    built = record(
        step("ctx", 0, 0.1, name="[internal] load build context", platform="",
             statuses=(status("transferring context:", 5387),)),
        step("from", 0, 1, name=f"[{AMD} 1/2] FROM r/busybox@sha256:{'b' * 64}",
             statuses=(status(f"resolve r/busybox@sha256:{'b' * 64}"),
                       status(blob, 1_140_344, 1_140_344), status(blob, 1_140_344, 1_140_344),
                       status("sha256:" + "c" * 64, 10, 1000))),
        step("export:0", 2, 3, name="exporting to image", platform="",
             statuses=(status("exporting layers"), status("pushing layers"),
                       status(f"pushing manifest for r/app:1@sha256:{'d' * 64}"))),
    )  # fmt: skip
    moved = build_report(built).transfers
    assert (moved.pulled_bytes, moved.pulled_blobs) == (1_141_344, 2)
    assert moved.context_bytes == 5387
    assert moved.pushed_to == ("r/app:1",)
    assert (moved.pushed_bytes, moved.exported_bytes) == (None, None)  # not recorded, not 0
    counted = record(
        step("export:0", 2, 3, name="exporting to oci image format", platform="",
             statuses=(status("sending tarball", 4096),)),
        step("export:1", 2, 3, name="exporting to image", platform="",
             statuses=(status("pushing layers"), status(blob, 700, 700))),
    )  # fmt: skip
    moved = build_report(counted).transfers
    assert (moved.exported_bytes, moved.pushed_bytes) == (4096, 700)


def test_the_cache_hit_rate_counts_dockerfile_steps_but_from_only() -> None:
    built = record(
        step("load", 0, 0, name="[internal] load .dockerignore", platform=""),
        step("from", 0, 0, name=f"[{AMD} 1/4] FROM busybox"),  # BuildKit: done, never cached
        step("copy", 0, 0, name=f"[{AMD} 2/4] COPY . .", cached=True),
        step("run", 0, 1, name=f"[{AMD} 3/4] RUN make"),
        step("workdir", 0, 1, name=f"[{AMD} 4/4] WORKDIR /app", cached=True),
        step("export:0", 1, 2, name="exporting to image", platform=""),
    )
    cache = build_report(built).cache
    assert (cache.cached, cache.cacheable) == (2, 3)
    assert cache.rate == pytest.approx(2 / 3)
    assert build_report(record()).cache.rate is None
    counts = report_json(build_report(built))["cache"]
    assert isinstance(counts, dict) and "FROM steps" in str(counts["counts"])


def test_a_fully_cached_rebuild_is_100_percent_and_the_note_says_cached() -> None:
    name = f"[{ARM} build 2/2] RUN make"
    built = record(
        step("from", 0, 0.5, name=f"[{ARM} build 1/2] FROM busybox", platform=ARM),
        step("from2", 0, 0.5, name=f"[{AMD} build 1/2] FROM busybox"),
        step("emu", 0.5, 0.5, name=name, platform=ARM, emulated=True, cached=True),
        step("twin", 0.5, 0.5, name=name.replace(ARM, AMD), cached=True),
        dockerfile_source=DOCKERFILE,
    )
    report = build_report(built)
    assert report.cache.rate == 1.0
    assert report.advice == () and report.advice_note == ALL_CACHED
    assert "cache" in ALL_CACHED
    # BuildKit's cached steps do not always say they would have run emulated: every RUN
    # cached is enough; an emulated step that ran is not
    unmarked = replace(built, steps=(*built.steps[:2], replace(built.steps[2], emulated=False),
                                     built.steps[3]))  # fmt: skip
    assert build_report(unmarked).advice_note == ALL_CACHED
    ran = replace(built, steps=(*built.steps[:2], replace(built.steps[2], cached=False),
                                built.steps[3]))  # fmt: skip
    assert build_report(ran).advice_note != ALL_CACHED
    native = replace(unmarked, steps=(*unmarked.steps[:3], replace(built.steps[3], cached=False)))
    assert build_report(native).advice_note != ALL_CACHED


def _advised(source: str) -> BuildRecord:
    name = f"[{ARM} build 2/2] RUN make"
    return record(
        step("emu", 0, 8, name=name, platform=ARM, emulated=True),
        step("twin", 0, 1, name=name.replace(ARM, AMD)),
        dockerfile="/src/app/Dockerfile.arm",
        dockerfile_source=source,
    )


def test_advice_from_the_recorded_dockerfile_with_its_lines() -> None:
    report = build_report(_advised(DOCKERFILE))
    (advice,) = report.advice
    assert (advice.filename, advice.line, advice.stage_line) == ("Dockerfile.arm", 2, 1)
    assert report.source_lines == ((1, "FROM busybox AS build"), (2, "RUN make"))
    assert report.advice_note == ""


def test_a_dockerfile_that_no_longer_parses_gives_no_advice_and_no_error() -> None:
    report = build_report(_advised("FROM busybox AS build\nRUNN make\n"))
    assert report.advice == ()
    assert "unknown instruction" in report.advice_note
    missing = build_report(_advised(""))
    assert missing.advice == () and "no Dockerfile" in missing.advice_note


def test_the_json_has_stable_camelcase_keys_and_times_from_the_start() -> None:
    data = report_json(build_report(_advised(DOCKERFILE)))
    assert list(data) == [
        "ref", "name", "builder", "status", "error", "started", "startedAt",
        "durationSeconds", "platforms", "nodes", "dockerfile", "image", "lanes",
        "criticalPath", "slowest", "transfers", "cache", "advice", "adviceNote",
    ]  # fmt: skip
    assert data["started"] == T0
    assert data["startedAt"] == "1970-01-01T00:16:40Z"
    assert data["durationSeconds"] == 20.0
    lanes = data["lanes"]
    assert isinstance(lanes, list)
    (emulated,) = [s for lane in lanes for s in lane["steps"] if s["emulated"]]
    assert (emulated["start"], emulated["end"], emulated["seconds"]) == (0.0, 8.0, 8.0)
    assert sorted(emulated) == sorted(
        ["vertex", "name", "platform", "node", "queuedSeconds", "start", "end", "seconds",
         "cached", "emulated", "cross", "error", "canceled", "critical"]
    )  # fmt: skip
    advice = data["advice"]
    assert isinstance(advice, list) and advice[0]["line"] == 2
    json.dumps(data)  # JSON as it stands


def test_write_report_picks_the_format_from_fmt_or_the_suffix(tmp_path: Path) -> None:
    built = _advised(DOCKERFILE)
    write_report(built, tmp_path / "r.html")
    write_report(built, tmp_path / "r.json")
    write_report(built, tmp_path / "forced.html", fmt="json")
    assert (tmp_path / "r.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads((tmp_path / "r.json").read_text())["ref"] == built.ref
    assert json.loads((tmp_path / "forced.html").read_text())["ref"] == built.ref
    with pytest.raises(UsageError, match="unknown report format"):
        write_report(built, tmp_path / "r.txt", fmt="pdf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["forced.html", "r.html", "r.json"]


def test_a_directory_or_a_missing_parent_is_an_error_naming_the_path(tmp_path: Path) -> None:
    built = record()
    with pytest.raises(UsageError, match=f"{tmp_path}: it is a directory"):
        write_report(built, tmp_path)
    missing = tmp_path / "no" / "report.html"
    with pytest.raises(UsageError, match=f"{missing}: no directory"):
        write_report(built, missing)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("the previous report")

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(PolybuildError, match=f"no space left .*: cannot write {target}$"):
        write_report(record(), target)
    assert target.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
