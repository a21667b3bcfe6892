"""The report's Gantt chart as inline SVG: one lane per platform (and node), one row per step
with its queued lead-in and its bar (native, cross-compiled, emulated, cached, failed; a
canceled or unfinished step keeps its kind's colour, faded, in a dotted outline), the
critical path outlined, an axis in seconds and a legend. The SVG has a viewBox and no fixed
width: the page scales it to the window. Every string from the record is
escaped (step names and errors are the build's, so hostile)."""

from __future__ import annotations

import math

from polybuild.insight.report_data import Report, StepBar
from polybuild.insight.step_map import parse_step_name
from polybuild.insight.text import attr, clip, text

WIDTH = 1160
LABEL_WIDTH = 440  # the step names' column
RIGHT = 16
ROW = 16
LANE_HEAD = 24
AXIS = 28
LEGEND = 30
BAR = 11
NAME_CHARS = 54
MIN_BAR = 1.5  # px: a cached or instant step still shows

LEGEND_ITEMS = (
    ("queued", "queued (inputs done, not started)"),
    ("native", "ran natively"),
    ("cross", "cross-compiled (build platform)"),
    ("emulated", "emulated (QEMU)"),
    ("cached", "cached"),
    ("error", "failed"),
    ("canceled", "canceled"),
    ("critical", "critical path"),
)


MIN_SPAN = 0.01  # seconds: the axis of an instant build


def _tick_step(span: float) -> float:
    """A round step (1, 2 or 5 x 10^k seconds) giving at most about 10 ticks."""
    raw = max(span, MIN_SPAN) / 10
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def _decimals(step: float) -> int:
    """Enough decimals that ticks `step` apart never print alike (0.005 -> 3, 2 -> 0)."""
    return max(0, -math.floor(math.log10(step) + 1e-9))


def _seconds(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f} s"


def _cut(bar: StepBar) -> bool:
    """A canceled step, or one that never finished (not one that failed)."""
    return bar.canceled or (bar.end is None and not bar.error)


def _kind(bar: StepBar) -> str:
    """What the bar's colour says: its outcome when it failed, else how it ran."""
    if bar.error and not bar.canceled:
        return "error"
    if bar.cached:
        return "cached"
    if bar.emulated:
        return "emulated"
    return "cross" if bar.cross else "native"


def _label(bar: StepBar) -> str:
    """The name without the platform its lane already shows (`[build 2/4] RUN make`)."""
    name = parse_step_name(bar.name)
    if name is None or name.cross or not name.platform:
        return bar.name
    return f"[{name.stage + ' ' if name.stage else ''}{name.number}/{name.total}] {name.text}"


def _tooltip(bar: StepBar) -> str:
    where = " on ".join(x for x in (bar.platform or "no platform", bar.node) if x)
    end = "not finished" if bar.end is None else f"{bar.end:.2f} s"
    lines = [
        clip(bar.name, 300),
        where,
        f"queued {bar.queued:.2f} s, ran {bar.start:.2f} s to {end} ({bar.seconds:.2f} s)",
    ]
    kind = _kind(bar)
    if _cut(bar):
        lines.append(f"{'canceled' if bar.canceled else 'never finished'} ({kind})")
    else:
        lines.append(
            {
                "emulated": "emulated under QEMU",
                "cross": "ran on the build platform for this target",
                "cached": "cached",
                "error": "failed: " + clip(bar.error, 300),
                "native": "native",
            }[kind]
        )
    if bar.critical:
        lines.append("on the critical path")
    return "\n".join(lines)


def _row(bar: StepBar, y: float, scale: float) -> str:
    x0 = LABEL_WIDTH
    start = x0 + max(bar.start, 0.0) * scale
    end = x0 + max(bar.end if bar.end is not None else bar.start, bar.start, 0.0) * scale
    ready = x0 + max(min(bar.ready, bar.start), 0.0) * scale
    kind = _kind(bar)
    classes = f"step {kind}" + (" canceled" if _cut(bar) else "")
    classes += " critical" if bar.critical else ""
    if bar.end is None:
        classes += " unfinished"
    parts = [f'<g class="row" data-vertex="{attr(bar.vertex)}">']
    parts.append(
        f'<text class="name" x="{LABEL_WIDTH - 6}" y="{y + BAR - 1:.1f}">'
        f"{text(clip(_label(bar), NAME_CHARS))}</text>"
    )
    if start - ready >= 0.5:
        parts.append(
            f'<rect class="queued" x="{ready:.1f}" y="{y + 2:.1f}" '
            f'width="{start - ready:.1f}" height="{BAR - 4}"/>'
        )
    parts.append(
        f'<rect class="{classes}" x="{start:.1f}" y="{y:.1f}" '
        f'width="{max(end - start, MIN_BAR):.1f}" height="{BAR}">'
        f"<title>{text(_tooltip(bar))}</title></rect>"
    )
    parts.append("</g>")
    return "".join(parts)


def _axis(span: float, scale: float, top: float, height: float) -> str:
    step = _tick_step(span)
    decimals = _decimals(step)
    parts = ['<g class="axis">']
    count = int(span / step + 1e-9)
    for i in range(count + 1):
        value = i * step
        x = LABEL_WIDTH + value * scale
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + height:.1f}"/>')
        parts.append(f'<text x="{x:.1f}" y="{top - 6}">{_seconds(value, decimals)}</text>')
    parts.append(f'<text class="unit" x="{LABEL_WIDTH - 24}" y="{top - 6}">seconds</text>')
    parts.append("</g>")
    return "".join(parts)


def _legend() -> str:
    parts = ['<g id="legend">']
    x = 8
    for kind, label in LEGEND_ITEMS:
        parts.append(
            f'<rect class="swatch {kind}" x="{x}" y="8" width="14" height="{BAR}"/>'
            f'<text x="{x + 19}" y="{8 + BAR - 1}">{label}</text>'
        )
        x += 30 + len(label) * 7
    parts.append("</g>")
    return "".join(parts)


def timeline_svg(report: Report) -> str:
    """The chart as one `<svg id="timeline">` element."""
    ends = [b.end for lane in report.lanes for b in lane.steps if b.end is not None]
    span = max([report.duration, *ends, MIN_SPAN])
    scale = (WIDTH - LABEL_WIDTH - RIGHT) / span
    rows = sum(len(lane.steps) for lane in report.lanes)
    top = LEGEND + AXIS
    height = top + len(report.lanes) * LANE_HEAD + rows * ROW + 8
    body: list[str] = []
    y = float(top)
    for index, lane in enumerate(report.lanes):
        body.append(
            f'<g class="lane{" shared" if not lane.platform else ""}" '
            f'data-platform="{attr(lane.platform)}" data-node="{attr(lane.node)}">'
        )
        shade = "lane-bg odd" if index % 2 else "lane-bg"
        lane_height = LANE_HEAD + len(lane.steps) * ROW
        body.append(
            f'<rect class="{shade}" x="0" y="{y:.1f}" width="{WIDTH}" height="{lane_height}"/>'
        )
        body.append(f'<text class="lane-label" x="8" y="{y + 16:.1f}">{text(lane.label)}</text>')
        y += LANE_HEAD
        for bar in lane.steps:
            body.append(_row(bar, y + 2, scale))
            y += ROW
        body.append("</g>")
    return "".join(
        [
            f'<svg id="timeline" role="img" aria-label="Build timeline" '
            f'viewBox="0 0 {WIDTH} {height:.0f}">',
            _legend(),
            *body,
            _axis(span, scale, top, height - top),
            "</svg>",
        ]
    )


__all__ = ["LEGEND_ITEMS", "timeline_svg"]
