"""The report page on synthetic records, read back with the stdlib's HTML parser: hostile
strings come out as text, nothing is fetched, the chart, table and advice carry the classes
and ids the page promises, and a 100-step build's page stays under 300 KB."""

from __future__ import annotations

import math
from html.parser import HTMLParser

import pytest

from polybuild.history.record import BuildRecord, NodeRecord, StepRecord
from polybuild.insight.html_report import render_html
from polybuild.insight.report_data import build_report
from polybuild.insight.timeline_svg import LEGEND_ITEMS, timeline_svg
from tests.insight.records import build_record

AMD, ARM, ARM7 = "linux/amd64", "linux/arm64", "linux/arm/v7"
T0 = 5_000.0
HOSTILE = "<script>alert(1)</script><img src=x onerror=alert(2)>"
DOCKERFILE = "FROM busybox AS build\nRUN make\nFROM busybox\nCOPY --from=build /app /app\n"


class Page(HTMLParser):
    """Every element as (tag, attributes) and the text between them."""

    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.feed(source)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.texts.append(data)

    def select(self, tag: str, *classes: str) -> list[dict[str, str]]:
        return [
            a
            for t, a in self.elements
            if t == tag and set(classes) <= set(a.get("class", "").split())
        ]

    def by_id(self, id_: str) -> tuple[str, dict[str, str]]:
        (found,) = [(t, a) for t, a in self.elements if a.get("id") == id_]
        return found


def record(*steps: StepRecord, **fields: object) -> BuildRecord:
    return build_record(T0, 12.0, *steps, **fields)


def run(vertex: str, name: str, start: float, end: float, **fields: object) -> StepRecord:
    platform = str(fields.pop("platform", AMD))
    return StepRecord(
        vertex, name, T0 + start, T0 + end, platform=platform, node="this machine", **fields
    )  # type: ignore[arg-type]


def advised() -> BuildRecord:
    name = f"[{ARM} build 2/2] RUN make"
    return record(
        run("from", f"[{ARM} build 1/2] FROM busybox", 0, 0.2, platform=ARM, cached=True),
        run("emu", name, 0.2, 9, platform=ARM, emulated=True, inputs=("from",)),
        run("twin", name.replace(ARM, AMD), 0.2, 1.2),
        run("bad", f"[{AMD} 3/3] RUN false", 1.2, 2, error="exit code: 1", inputs=("twin",)),
        dockerfile="/ctx/Dockerfile",
        dockerfile_source=DOCKERFILE,
    )


def test_the_page_has_the_chart_the_table_the_totals_and_the_advice() -> None:
    page = Page(render_html(build_report(advised())))
    assert page.by_id("timeline")[0] == "svg"
    lanes = page.select("g", "lane")
    assert [a["data-platform"] for a in lanes] == [AMD, ARM]
    assert len(page.select("rect", "step")) == 4
    assert len(page.select("rect", "step", "emulated")) == 1
    assert len(page.select("rect", "step", "cached")) == 1
    assert len(page.select("rect", "step", "error")) == 1
    assert len(page.select("rect", "step", "critical")) == 2  # from -> emu
    assert page.select("g", "axis") and page.by_id("legend")
    assert page.by_id("slowest")[0] == "table"
    assert page.by_id("advice")[0] == "ol"
    (item,) = [a for t, a in page.elements if t == "li" and "data-line" in a]
    assert item["data-line"] == "2"
    text = "".join(page.texts)
    assert "Dockerfile:2" in text and "Dockerfile:1" in text  # the RUN, and the FROM to change
    assert "FROM --platform=$BUILDPLATFORM" in text
    assert "8.8\u00d7" in text  # 8.8 s emulated vs 1.0 s native
    assert page.by_id("cache-rate")[0] == "span"
    assert "0 of 3 steps cached" in text  # the FROM is left out: it never shows as cached


def test_record_strings_are_inert_text() -> None:
    hostile = record(
        run("a", f"[{AMD} 1/1] RUN {HOSTILE}", 0, 1, error=HOSTILE + "\x1b[31m\x00"),
        name=HOSTILE,
        error=HOSTILE,
        status="error",
        dockerfile=HOSTILE,
        builder=HOSTILE,
        nodes=(NodeRecord(HOSTILE, (AMD,)),),
    )
    html = render_html(build_report(hostile))
    page = Page(html)
    tags = {t for t, _ in page.elements}
    assert not tags & {"script", "img", "iframe", "object", "embed", "link"}
    assert not any(k.startswith("on") for _, a in page.elements for k in a)
    assert HOSTILE in "".join(page.texts)  # shown, as text
    assert "\x1b" not in html and "\x00" not in html


def test_nothing_is_fetched_from_anywhere() -> None:
    html = render_html(build_report(advised()))
    page = Page(html)
    for marker in ("http:", "https:", "url(", "@import", "<script", "<link"):
        assert marker not in html
    assert not any({"src", "href"} & set(a) for _, a in page.elements)


def test_a_build_with_no_dockerfile_says_why_there_is_no_advice() -> None:
    page = Page(render_html(build_report(record(run("a", f"[{AMD} 1/1] RUN x", 0, 1)))))
    assert page.by_id("advice-note")[0] == "p"
    assert not any(a.get("id") == "advice" for _, a in page.elements)


def hundred_steps() -> BuildRecord:
    steps = []
    platforms = (AMD, ARM, ARM7)
    for i in range(100):
        platform = platforms[i % 3]
        text = f"RUN ./build.sh --target {i} " + "--with-a-long-option " * 5
        steps.append(
            run(
                f"sha256:{i:064x}",
                f"[{platform} build {i // 3 + 1}/34] {text}",
                i * 0.3,
                i * 0.3 + 2.5,
                platform=platform,
                emulated=platform != AMD,
                cached=i % 7 == 0,
                inputs=(f"sha256:{i - 3:064x}",) if i >= 3 else (),
            )
        )
    return record(*steps, platforms=platforms, completed=T0 + 40)


def test_a_hundred_step_build_is_well_under_300_kb() -> None:
    html = render_html(build_report(hundred_steps()))
    size = len(html.encode())
    print(f"a 100-step build's page: {size} bytes")
    assert size < 300_000
    page = Page(html)
    assert len(page.select("rect", "step")) == 100
    assert len(page.select("g", "lane")) == 3


@pytest.mark.parametrize("status", ["error", "canceled"])
def test_a_failed_build_shows_its_status(status: str) -> None:
    page = Page(render_html(build_report(record(status=status, error="boom"))))
    assert page.select("span", f"status-{status}")


def test_one_line_emulated_for_two_platforms_is_one_suggestion_with_both() -> None:
    name = f"[{ARM} build 2/2] RUN make"
    built = record(
        run("arm", name, 0, 9, platform=ARM, emulated=True),
        run("arm7", name.replace(ARM, ARM7), 0, 12, platform=ARM7, emulated=True),
        run("twin", name.replace(ARM, AMD), 0, 1),
        platforms=(AMD, ARM, ARM7),
        dockerfile_source=DOCKERFILE,
    )
    page = Page(render_html(build_report(built)))
    (item,) = [a for t, a in page.elements if t == "li" and "data-line" in a]
    assert item["data-line"] == "2"
    assert [a["data-platform"] for a in page.select("li", "measured")] == [ARM7, ARM]


def test_a_canceled_step_keeps_its_kind_s_colour_and_has_a_legend_entry() -> None:
    built = record(
        run("emu", f"[{ARM} 2/2] RUN awk", 0, 1.24, platform=ARM, emulated=True, canceled=True),
        run("nat", f"[{AMD} 2/2] RUN awk", 0, 1.0, canceled=True),
        run("bad", f"[{AMD} 3/3] RUN false", 0, 1.0, error="exit code: 1"),
        status="error",
    )
    page = Page(render_html(build_report(built)))
    assert len(page.select("rect", "step", "emulated", "canceled")) == 1
    assert len(page.select("rect", "step", "native", "canceled")) == 1
    assert len(page.select("rect", "step", "error")) == 1
    assert not page.select("rect", "step", "error", "canceled")
    assert "canceled" in [kind for kind, _ in LEGEND_ITEMS]
    assert page.select("rect", "swatch", "canceled")
    (style,) = [t for t in page.texts if ".canceled{" in t]
    rule = style.split(".canceled{", 1)[1].split("}", 1)[0]
    assert "fill-opacity" in rule and "fill:" not in rule  # its kind's fill, faded
    rows = [t for t in page.texts if "not a whole run" in t]
    assert rows == ["canceled: not a whole run"]


def axis_labels(duration: float, *ends: float) -> list[str]:
    steps = [run(f"s{i}", f"[{AMD} 1/1] RUN x", 0, end) for i, end in enumerate(ends)]
    svg = timeline_svg(build_report(record(*steps, completed=T0 + duration)))
    axis = svg.split('<g class="axis">', 1)[1].split("</g>", 1)[0]
    return [t.rsplit(">", 1)[1] for t in axis.split("</text>")[:-1] if "unit" not in t]


@pytest.mark.parametrize("duration", [0.0, 0.004, 0.02, 0.2, 1.0, 7.3, 12.5, 99.0, 731.0])
def test_axis_labels_are_round_steps_never_repeated(duration: float) -> None:
    labels = axis_labels(duration, duration)
    assert len(labels) >= 2, labels
    assert len(set(labels)) == len(labels), labels
    values = [float(label.removesuffix(" s")) for label in labels]
    step = values[1] - values[0]
    mantissa = step / 10 ** math.floor(math.log10(step) + 1e-9)
    assert round(mantissa, 6) in (1.0, 2.0, 5.0), labels
    assert values[0] == 0 and values[-1] <= max(duration, 0.01) + 1e-9, labels


def test_the_chart_scales_to_the_window() -> None:
    page = Page(render_html(build_report(advised())))
    svg = page.by_id("timeline")[1]
    assert "width" not in svg and svg["viewbox"].startswith("0 0 ")
    style = "".join(t for t in page.texts if "#timeline{" in t)
    assert "width:100%" in style.split("#timeline{", 1)[1].split("}", 1)[0]


def test_two_flagged_steps_of_one_stage_are_one_change_with_both_lines() -> None:
    source = "FROM busybox AS build\nRUN make\nRUN make test\nFROM busybox\n"
    make, check = f"[{ARM} build 2/3] RUN make", f"[{ARM} build 3/3] RUN make test"
    built = record(
        run("a", make, 0, 9, platform=ARM, emulated=True),
        run("b", check, 9, 15, platform=ARM, emulated=True),
        run("ta", make.replace(ARM, AMD), 0, 1),
        run("tb", check.replace(ARM, AMD), 1, 2),
        dockerfile_source=source,
    )
    report = build_report(built)
    assert len(report.advice) == 2
    page = Page(render_html(report))
    (stage,) = page.select("li", "stage")
    assert stage["data-stage-line"] == "1"
    assert [a["data-line"] for t, a in page.elements if t == "li" and "data-line" in a] == [
        "2", "3"
    ]  # fmt: skip
    assert len(page.select("span", "change")) == 1
