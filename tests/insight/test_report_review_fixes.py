"""What a review of the report found: one factor rule with the advisor, no 0.0x for an instant
step, undecodable text and out-of-range times in a record, a long tty header."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from polybuild.insight.advisor import ESTIMATE, advise
from polybuild.insight.emulation_factor import FactorFinder
from polybuild.insight.report_file import write_report
from polybuild.progress.tty import TTYRenderer
from tests.insight.test_advisor import DOCKERFILE, native, record, step


def test_the_report_and_the_advice_use_the_same_factor_for_an_unmeasured_variant() -> None:
    name = "[linux/arm/v6 build 3/4] RUN ./configure"
    armv6 = step(name, 12.0, platform="linux/arm/v6")
    factors = {"linux/arm/v7": 12.0}
    (advice,) = advise(record(armv6), DOCKERFILE, factors=factors)
    found = FactorFinder(record(armv6), factors=factors).factor(armv6)
    assert found is not None and advice.basis == ESTIMATE
    assert found.basis == ESTIMATE and found.value == pytest.approx(advice.ratio)


def test_an_instant_emulated_step_has_no_factor() -> None:
    name = "[linux/arm64 build 4/4] RUN make"
    instant = step(name, 0.0)
    assert FactorFinder(record(instant, native(name, 2.0))).factor(instant) is None


def test_a_record_with_undecodable_text_and_a_time_out_of_range_is_still_reported(
    tmp_path: Path,
) -> None:
    broken = step("[linux/arm64 build 4/4] RUN cat \udcff", 3.0)
    late = replace(record(broken), started=1e300, completed=1e300)
    page = tmp_path / "report.html"
    write_report(late, page)
    text = page.read_text()
    assert "RUN cat ?" in text and "<svg" in text
    assert not [p for p in tmp_path.iterdir() if p.name != "report.html"]


def test_a_long_header_never_wraps_the_tty_frame() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    renderer = TTYRenderer(out, desc="x" * 200, size=lambda: (60, 20), refresh=3600)
    renderer.close()
    header = out.getvalue().split("\n")[0]
    visible = header.split("[+]", 1)[1].split("\x1b")[0]
    assert len("[+]" + visible) <= 59
