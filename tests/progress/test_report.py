"""The emulation report after a build: emulated steps, durations, and the cross-build hint."""

from __future__ import annotations

from polybuild.platforms import Platform
from polybuild.progress import Recorder, emulation_report
from polybuild.progress.report import EmulatedStep, format_duration
from tests.progress.script import run_script


def test_report_lists_emulated_steps_slowest_first() -> None:
    recorder = Recorder()
    run_script(recorder)
    report = emulation_report(recorder.events)
    arm64 = Platform("linux", "arm64")
    rounded = tuple(
        EmulatedStep(s.name, s.platform, round(s.seconds, 3), s.failed) for s in report.steps
    )
    assert rounded == (
        EmulatedStep("[linux/arm64 build 2/2] RUN make", arm64, 44.2, False),
        EmulatedStep("[linux/arm64 build 3/3] RUN false", arm64, 0.5, True),
    )
    assert report.slow == report.steps[:1]
    text = report.render()
    lines = text.splitlines()
    assert lines[0] == "Emulated steps: 2, 44.7s in total under QEMU"
    assert lines[1].split() == [
        "44.2s",
        "linux/arm64",
        "[linux/arm64",
        "build",
        "2/2]",
        "RUN",
        "make",
    ]
    assert lines[2].endswith("RUN false  (failed)")
    assert "1 step took longer than 30.0s under emulation" in text
    assert "FROM --platform=$BUILDPLATFORM" in text and "$TARGETPLATFORM" in text


def test_native_and_cached_steps_are_left_out() -> None:
    recorder = Recorder()
    run_script(recorder)
    names = [s.name for s in emulation_report(recorder.events).steps]
    assert not any("amd64" in name or "internal" in name for name in names)


def test_no_hint_under_the_threshold_and_nothing_without_emulation() -> None:
    recorder = Recorder()
    run_script(recorder)
    relaxed = emulation_report(recorder.events, threshold=120)
    assert relaxed.slow == () and "FROM --platform" not in relaxed.render()
    assert emulation_report([]).render() == ""


def test_durations() -> None:
    assert [format_duration(s) for s in (1.25, 59.94, 192, 3725)] == [
        "1.2s",
        "59.9s",
        "3m12s",
        "1h02m",
    ]
