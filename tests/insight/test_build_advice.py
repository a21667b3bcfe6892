"""The emulation advisor after a real build: an emulated RUN whose twin ran natively for
another platform is reported with the ratio of the two steps' times as the build measured
them (read back from the same build's rawjson progress), on stderr and in --metadata-file;
a cross-compiled stage gets no advice."""

from __future__ import annotations

import calendar
import json
import time
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_platforms, require_root, run_cli

pytestmark = [pytest.mark.root, pytest.mark.qemu]

LOOP = "awk 'BEGIN { s = 0; for (i = 0; i < 400000; i++) s = (s + i * i) % 1000003; print s }'"


def _seconds(stamp: str) -> float:
    base, _, fraction = stamp.rstrip("Z").partition(".")
    return calendar.timegm(time.strptime(base, "%Y-%m-%dT%H:%M:%S")) + float(f"0.{fraction or 0}")


def _step_times(stderr: str) -> dict[str, float]:
    """Each completed vertex's duration by name, from the rawjson progress."""
    merged: dict[str, dict[str, str]] = {}
    for line in stderr.splitlines():
        try:
            status = json.loads(line)
        except ValueError:
            continue
        for vertex in status.get("vertexes") or []:
            merged.setdefault(vertex["digest"], {}).update(vertex)
    return {
        v["name"]: _seconds(v["completed"]) - _seconds(v["started"])
        for v in merged.values()
        if v.get("started") and v.get("completed") and not v.get("cached")
    }


def test_an_emulated_step_with_a_native_twin_is_advised(tmp_path: Path) -> None:
    require_root()
    require_platforms("linux/arm64")
    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {LOOP} > /sum\n")
    metadata = tmp_path / "metadata.json"
    done = run_cli(root, "build", "--platform", "linux/amd64,linux/arm64", "--progress=rawjson",
                   "--metadata-file", str(metadata), "-o", f"type=oci,dest={tmp_path / 'o.tar'}",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    times = _step_times(done.stderr)
    emulated = next(t for name, t in times.items() if name.startswith("[linux/arm64 2/2] RUN"))
    native = next(t for name, t in times.items() if name.startswith("[linux/amd64 2/2] RUN"))
    assert emulated >= 1.0, times  # the advisor's threshold: QEMU makes the loop slow enough
    (advice,) = json.loads(metadata.read_text())["polybuild.emulation.advice"]
    assert (advice["file"], advice["line"], advice["platform"], advice["basis"]) == (
        "Dockerfile",
        2,
        "linux/arm64",
        "twin",
    )
    assert advice["emulatedSeconds"] == pytest.approx(emulated, abs=0.01)
    assert advice["nativeSeconds"] == pytest.approx(native, abs=0.01)
    assert advice["ratio"] == pytest.approx(emulated / native, rel=0.02)
    assert "FROM --platform=$BUILDPLATFORM" in advice["message"]
    assert advice["message"] in done.stderr  # the report after the build says the same


def test_a_cross_compiled_stage_gets_no_advice(tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM --platform=$BUILDPLATFORM busybox AS build\nRUN {LOOP} > /sum\n"
        "FROM busybox\nCOPY --from=build /sum /sum\n"
    )
    metadata = tmp_path / "metadata.json"
    done = run_cli(root, "build", "--platform", "linux/amd64,linux/arm64", "--progress=plain",
                   "--metadata-file", str(metadata), "-o", f"type=oci,dest={tmp_path / 'o.tar'}",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "polybuild.emulation.advice" not in json.loads(metadata.read_text())
    assert "Cross-compile to save time" not in done.stderr


def _one_platform(
    root: Path, ctx: Path, platform: str, metadata: Path, *, output: bool = True
) -> dict[str, object]:
    metadata.unlink(missing_ok=True)
    out = ["-o", f"type=oci,dest={ctx.parent / 'o.tar'}"] if output else []
    done = run_cli(root, "build", "--platform", platform, "--progress=plain",
                   "--metadata-file", str(metadata), *out, str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    data: dict[str, object] = json.loads(metadata.read_text())
    return data


def test_without_a_twin_the_native_time_comes_from_history_then_from_measured_factors(
    tmp_path: Path,
) -> None:
    require_root()
    require_platforms("linux/arm64")
    from polybuild.insight.factors import save_factors

    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {LOOP} > /sum\n")
    metadata = tmp_path / "metadata.json"
    # arm64 alone, nothing known: an emulated step with no native time is not advised (and
    # the metadata file is written without any output, as buildx writes it)
    first = _one_platform(root, ctx, "linux/arm64", metadata, output=False)
    assert "polybuild.emulation.advice" not in first
    # QEMU's factor measured (as `binfmt --bench` stores it): an estimate
    save_factors(root, {"linux/amd64": 1.0, "linux/arm64": 10.0}, workload="test",
                 native="linux/amd64", measured=0.0)  # fmt: skip
    done = run_cli(root, "build", "--no-cache", "--platform", "linux/arm64", "--progress=plain",
                   "--metadata-file", str(metadata), "-o", f"type=oci,dest={tmp_path / 'o.tar'}",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (advice,) = json.loads(metadata.read_text())["polybuild.emulation.advice"]
    assert advice["basis"] == "estimate" and advice["ratio"] == pytest.approx(10.0, rel=0.01)
    assert "estimated from QEMU's measured slow-down" in done.stderr
    # the step once built natively for amd64: its time is the twin of the next arm64 build
    _one_platform(root, ctx, "linux/amd64", metadata)
    done = run_cli(root, "build", "--no-cache", "--platform", "linux/arm64", "--progress=plain",
                   "--metadata-file", str(metadata), "-o", f"type=oci,dest={tmp_path / 'o.tar'}",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    (advice,) = json.loads(metadata.read_text())["polybuild.emulation.advice"]
    assert advice["basis"] == "history", advice
    native_run = json.loads(run_cli(root, "history", "inspect", "^1", "--format", "json").stdout)
    assert native_run["Platform"] == ["linux/amd64"]
    assert "native time from an earlier build" in done.stderr


def test_build_report_writes_the_timeline_page_and_its_json(tmp_path: Path) -> None:
    require_root()
    require_platforms("linux/arm64")
    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN {LOOP} > /sum\n")
    page, data = tmp_path / "report.html", tmp_path / "report.json"
    done = run_cli(root, "build", "--platform", "linux/amd64,linux/arm64", "--progress=plain",
                   "--report", str(page), str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert page.read_text().startswith("<!DOCTYPE html>")
    done = run_cli(root, "build", "--platform", "linux/amd64,linux/arm64", "--progress=plain",
                   "--no-cache", "--report", str(data), str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(data.read_text())
    latest = json.loads(run_cli(root, "history", "inspect", "--format", "json").stdout)
    assert report == latest["Report"]  # the same data as the history's report of that build
    (advice,) = report["advice"]
    assert (advice["line"], advice["platform"]) == (2, "linux/arm64")
    # a failed build still gets its report; a report that cannot be written is refused early
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN exit 3\n")
    done = run_cli(root, "build", "--report", str(page), str(ctx))
    assert done.returncode != 0 and page.read_text().startswith("<!DOCTYPE html>")
    assert "exit code: 3" in page.read_text()
    done = run_cli(root, "build", "--report", str(tmp_path / "missing" / "r.html"), str(ctx))
    assert done.returncode != 0 and "--report" in done.stderr and "no directory" in done.stderr


def test_the_reports_after_a_build_never_print_a_dockerfiles_escape_sequences() -> None:
    from polybuild.imagebuild.advice import render_advice
    from polybuild.insight import TWIN, Advice
    from polybuild.platforms import parse
    from polybuild.progress import emulation_report
    from polybuild.progress.events import VertexCompleted, VertexStarted

    hostile = "RUN printf '\x1b]0;PWNED\x07\x1b[2J' && make"
    advice = Advice("Dockerfile", 2, 2, "build", 1, hostile, "linux/arm64", 9.0, 1.0, TWIN)
    text = render_advice([advice])
    assert "\x1b" not in text and "\x07" not in text and "PWNED" not in text
    assert "RUN printf '' && make" in text
    name = f"[linux/arm64 2/2] {hostile}"
    started = VertexStarted("v", name, 0.0, parse("linux/arm64"), True)
    rendered = emulation_report([started, VertexCompleted("v", 9.0)]).render()
    assert "\x1b" not in rendered and "RUN printf '' && make" in rendered
