"""The timeline report of a real build, looked at as a person would: a two-platform build with
a cross-compiled stage and an emulated RUN, `history inspect --format html -o`, then the page
in a headless Chromium, asserted through its DOM (lanes, bars, table, advice, nothing
fetched) and as a PNG screenshot."""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from polybuild.insight.html_report import render_html
from polybuild.insight.report_data import build_report
from tests.conftest import import_busybox, require_platforms, require_root, run_cli
from tests.insight.browser import browser, find_browser
from tests.insight.test_html_report import hundred_steps, run

LOOP = "awk 'BEGIN { s = 0; for (i = 0; i < 400000; i++) s = (s + i * i) % 1000003; print s }'"
DOCKERFILE = f"""\
FROM --platform=$BUILDPLATFORM busybox AS tools
ARG TARGETARCH
RUN {LOOP} > /cross-$TARGETARCH
FROM busybox
COPY --from=tools /cross-* /
RUN {LOOP} > /sum
"""
AMD, ARM = "linux/amd64", "linux/arm64"


def png_facts(data: bytes) -> tuple[int, int, int]:
    """Width, height and how many distinct byte values its (filtered) pixel rows hold: a
    blank page's rows are nearly all one value."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    offset, chunks, width, height = 8, [], 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    return width, height, len(set(zlib.decompress(b"".join(chunks))))


@pytest.mark.integration
@pytest.mark.root
@pytest.mark.qemu
def test_the_report_of_a_real_build_in_a_browser(tmp_path: Path) -> None:
    require_root()
    require_platforms(ARM)
    find_browser()  # before the build: a missing browser fails at once, saying what to install
    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    built = run_cli(root, "build", "--platform", f"{AMD},{ARM}",
                    "-o", f"type=oci,dest={tmp_path / 'o.tar'}", str(ctx))  # fmt: skip
    assert built.returncode == 0, built.stderr
    page = tmp_path / "report.html"
    done = run_cli(root, "history", "inspect", "--format", "html", "-o", str(page))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    shown = run_cli(root, "history", "inspect", "--format", "json")
    assert shown.returncode == 0, shown.stderr
    data: dict[str, Any] = json.loads(shown.stdout)["Report"]
    (advice,) = data["advice"]
    assert (advice["line"], advice["stageLine"], advice["platform"]) == (6, 4, ARM)

    with browser() as chromium:
        chromium.open(page)

        def query(expression: str) -> Any:
            return chromium.evaluate(expression)

        assert chromium.requests == [page.resolve().as_uri()]  # nothing else was fetched
        lanes = query(
            "[...document.querySelectorAll('svg#timeline g.lane:not(.shared)')]"
            ".map(g => g.dataset.platform)"
        )
        assert lanes == [AMD, ARM] == [lane["platform"] for lane in data["lanes"][1:]]

        def count(selector: str) -> int:
            return int(query(f"document.querySelectorAll({json.dumps(selector)}).length"))

        assert count(f'g.lane[data-platform="{ARM}"] rect.step.emulated') == 1
        assert count(f'g.lane[data-platform="{AMD}"] rect.step.emulated') == 0
        assert count(f'g.lane[data-platform="{ARM}"] rect.step.cross') == 1
        assert count("rect.step") == sum(len(lane["steps"]) for lane in data["lanes"])
        assert count("rect.step.critical") == len(data["criticalPath"]) >= 2
        assert count("#legend rect.swatch") == 8
        tooltip = query("document.querySelector('rect.step.emulated > title').textContent")
        assert f"[{ARM} stage-1 3/3] RUN awk" in tooltip and "emulated under QEMU" in tooltip
        # at a glance: the emulated RUN is the widest bar of its lane
        widths = query(
            f"[...document.querySelectorAll('g.lane[data-platform=\"{ARM}\"] rect.step')]"
            ".map(r => [r.classList.contains('emulated'), r.getBoundingClientRect().width])"
        )
        emulated = max(w for e, w in widths if e)
        assert all(w < emulated for e, w in widths if not e), widths

        rows = query(
            "[...document.querySelectorAll('table#slowest tbody tr')]"
            ".map(tr => [...tr.cells].map(td => td.textContent))"
        )
        assert len(rows) == len(data["slowest"]) >= 3
        step, platform, seconds, factor = rows[0]
        assert (step.startswith(f"[{ARM} stage-1 3/3] RUN awk"), platform) == (True, ARM)
        assert float(seconds) == pytest.approx(data["slowest"][0]["seconds"], abs=0.01)
        assert factor == f"{data['slowest'][0]['factor']:.1f}\u00d7"

        items = query("[...document.querySelectorAll('#advice > li')].map(li => li.innerText)")
        assert len(items) == 1
        assert "Dockerfile:6" in items[0] and "Change Dockerfile:4" in items[0]
        assert "FROM --platform=$BUILDPLATFORM" in items[0]
        assert "FROM busybox" in items[0]  # the line to change, quoted from the Dockerfile

        png = chromium.screenshot()
    (tmp_path / "report.png").write_bytes(png)
    width, height, values = png_facts(png)
    assert width == 1240 and 600 <= height <= 5000, (width, height)
    assert 20_000 < len(png) < 5_000_000
    assert values > 40, "the screenshot is blank"


@pytest.mark.integration
@pytest.mark.parametrize("width", [800, 1000, 1240, 1600])
def test_only_the_chart_may_scroll_sideways_and_it_fills_the_window(
    tmp_path: Path, width: int
) -> None:
    built = hundred_steps()
    pinned = f"FROM docker.io/library/busybox:latest@sha256:{'e3' * 32}"  # nowhere to wrap
    long = run("long", f"[{AMD} build 1/34] {pinned}", 0, 30)
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(replace(built, steps=(*built.steps, long)))))
    with browser(width=width) as chromium:
        chromium.open(page)
        inner, scrolled, chart, svg = chromium.evaluate(
            "[window.innerWidth, document.documentElement.scrollWidth,"
            " document.querySelector('.chart').getBoundingClientRect().width,"
            " document.querySelector('svg#timeline').getBoundingClientRect().width]"
        )
    assert scrolled <= inner, f"the page scrolls sideways at {width} px: {scrolled} > {inner}"
    assert chart <= inner
    assert svg >= chart - 2  # the chart fills its box (scrolling inside it when narrower)
