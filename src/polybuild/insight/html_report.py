"""A build's timeline report as one self-contained HTML page: the summary, the advisor's
suggestions (the Dockerfile line to change first), the Gantt chart, the slowest steps with
their emulation factor, the bytes moved and the cache hit rate.

Inline CSS and SVG only: no script, no font, image or URL to fetch, so the page opens the
same offline and from an attachment. Every string from the record is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from polybuild.insight.advisor import ESTIMATE, FIX, HISTORY, TWIN, Advice
from polybuild.insight.report_data import CACHEABLE, Report
from polybuild.insight.text import clip, size, text
from polybuild.insight.timeline_svg import timeline_svg

_STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px;color:#1d2733;
background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:13px}
dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 16px;margin:8px 0}
dl.facts dt{color:#5b6875}dl.facts dd{margin:0;overflow-wrap:anywhere}
.status-completed{color:#1d7a3c;font-weight:600}.status-error,.status-canceled{color:#c62828;
font-weight:600}
#advice{padding-left:22px}#advice>li{margin:0 0 14px}ul.platforms{margin:2px 0;padding-left:18px}
#advice .change{display:block;margin-top:4px;padding:6px 10px;background:#fff4e0;
border-left:4px solid #e8890c}
#advice .line{font-weight:700}pre.source{margin:4px 0;padding:4px 8px;background:#f4f6f8;
overflow-x:auto}
.note{color:#5b6875}
.chart{overflow-x:auto;border:1px solid #dde3e9}#timeline{display:block;width:100%;
height:auto;min-width:640px}td code{overflow-wrap:anywhere}
#advice ol.lines{list-style:none;padding-left:0;margin:0}#advice ol.lines>li{margin:0 0 6px}
#advice ul.platforms{list-style:circle}
svg text{font:11px ui-monospace,"DejaVu Sans Mono",monospace;fill:#1d2733}
svg .name{text-anchor:end}svg .lane-label{font-weight:700;font-size:12px}
svg .lane-bg{fill:#fbfcfd}svg .lane-bg.odd{fill:#f2f5f8}
svg .axis line{stroke:#d3dae1;stroke-width:1}svg .axis text{text-anchor:middle;fill:#5b6875}
svg .axis .unit{text-anchor:end}
.queued{fill:#c9d3dd}.native{fill:#3f7fcf}.cross{fill:#2a9d8f}.emulated{fill:#e8890c}
.cached{fill:#a9b4bf}.error{fill:#d32f2f}.canceled{fill-opacity:.35;stroke:#5b6875;
stroke-dasharray:2 2}.swatch.canceled{fill:#8a96a3}
rect.critical{stroke:#111;stroke-width:1.6}.swatch.critical{fill:#fff}
table{border-collapse:collapse;margin:6px 0}th,td{padding:3px 10px;text-align:left;
border-bottom:1px solid #e3e8ed;vertical-align:top}td.num,th.num{text-align:right}
tr.emulated td:first-child{border-left:4px solid #e8890c}
"""

_BASIS = {
    TWIN: "native twin in this build",
    HISTORY: "native twin in an earlier build",
    ESTIMATE: "QEMU's measured slow-down",
}


def _stamp(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # a record's time out of any calendar
        return "-"


def _bytes(count: int | None) -> str:
    return "not recorded" if count is None else size(count)


def _facts(rows: list[tuple[str, str]], id_: str) -> str:
    cells = "".join(f"<dt>{text(k)}</dt><dd>{v}</dd>" for k, v in rows)
    return f'<dl class="facts" id="{id_}">{cells}</dl>'


def _summary(report: Report) -> str:
    status = f'<span class="status-{text(report.status)}">{text(report.status)}</span>'
    if report.error:
        status += f" <span class='mono'>{text(clip(report.error, 600))}</span>"
    nodes = "; ".join(f"{label} ({', '.join(p)})" for label, p in report.nodes)
    rows = [
        ("Ref", f"<code>{text(report.ref)}</code>"),
        ("Status", status),
        ("Duration", f"{report.duration:.1f} s"),
        ("Started", text(_stamp(report.started))),
        ("Platforms", text(", ".join(report.platforms)) or "-"),
        ("Nodes", text(nodes) or "-"),
        ("Builder", text(report.builder)),
    ]
    if report.dockerfile:
        rows.append(("Dockerfile", f"<code>{text(report.dockerfile)}</code>"))
    if report.image_digest:
        rows.append(("Image", f"<code>{text(report.image_digest)}</code>"))
    title = text(report.name or report.ref)
    return f'<header id="summary"><h1>Build {title}</h1>{_facts(rows, "facts")}</header>'


def _source(report: Report, first: int, last: int) -> str:
    lines = [(n, s) for n, s in report.source_lines if first <= n <= last]
    if not lines:
        return ""
    body = "\n".join(f"{n:>4}  {text(s)}" for n, s in lines)
    return f'<pre class="source">{body}</pre>'


def _measured(advice: Advice) -> str:
    basis = _BASIS.get(advice.basis, advice.basis)
    native = ("~" if advice.basis == ESTIMATE else "") + f"{advice.native_seconds:.1f} s"
    return (
        f'<li class="measured" data-platform="{text(advice.platform)}">{text(advice.platform)}:'
        f" {advice.emulated_seconds:.1f} s emulated vs {native} native"
        f" (<b>{advice.ratio:.1f}&times;</b>, {text(basis)})</li>"
    )


def _line_item(report: Report, same_line: Sequence[Advice]) -> str:
    """One RUN line, with each platform's measurement (most time saved first)."""
    first = same_line[0]
    measured = "".join(_measured(a) for a in same_line)
    return (
        f'<li data-line="{first.line}"><span class="line"><code>{text(first.location)}</code>'
        f" <code>{text(clip(first.instruction, 160))}</code></span>"
        f'<ul class="platforms">{measured}</ul>'
        f"{_source(report, first.line, first.end_line)}</li>"
    )


def _stage_item(report: Report, same_stage: Sequence[Advice]) -> str:
    """One stage's FROM line to change, once, with its RUN lines to move under it."""
    first = same_stage[0]
    lines: dict[int, list[Advice]] = {}
    for advice in same_stage:
        lines.setdefault(advice.line, []).append(advice)
    items = "".join(_line_item(report, same) for same in lines.values())
    return (
        f'<li class="stage" data-stage-line="{first.stage_line}"><ol class="lines">{items}</ol>'
        f'<span class="change">Change <code>{text(first.filename)}:{first.stage_line}</code>'
        f" (stage <code>{text(first.stage)}</code>): {text(FIX)}"
        f"{_source(report, first.stage_line, first.stage_line)}</span></li>"
    )


def _advice(report: Report) -> str:
    head = "<h2>Cross-compile to save time</h2>"
    if not report.advice:
        return f'<section id="advice-section">{head}<p class="note" id="advice-note">' + (
            f"No suggestion: {text(report.advice_note)}.</p></section>"
        )
    stages: dict[tuple[str, int], list[Advice]] = {}
    for advice in report.advice:  # most time saved first, so is the first stage
        stages.setdefault((advice.filename, advice.stage_line), []).append(advice)
    items = "".join(_stage_item(report, same) for same in stages.values())
    return f'<section id="advice-section">{head}<ol id="advice">{items}</ol></section>'


def _slowest(report: Report) -> str:
    rows = []
    for step in report.slowest:
        if step.factor is not None:
            basis = _BASIS.get(step.factor.basis, step.factor.basis)
            factor = f'<span title="{text(basis)}">{step.factor.value:.1f}&times;</span>'
        else:
            factor = "emulated, no native time" if step.emulated else "native"
        if step.outcome:
            factor = f"{step.outcome}: not a whole run" if step.emulated else step.outcome
        kind = ' class="emulated"' if step.emulated else ""
        rows.append(
            f"<tr{kind}><td><code>{text(clip(step.name, 140))}</code></td>"
            f"<td>{text(step.platform) or '-'}</td>"
            f'<td class="num">{step.seconds:.2f}</td><td>{factor}</td></tr>'
        )
    head = (
        "<tr><th>Step</th><th>Platform</th><th class='num'>Seconds</th>"
        "<th>Emulation factor</th></tr>"
    )
    return (
        f"<section><h2>Slowest steps</h2><table id='slowest'><thead>{head}</thead>"
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _totals(report: Report) -> str:
    t, cache = report.transfers, report.cache
    rate = "-" if cache.rate is None else f"{cache.rate * 100:.0f}%"
    names = ", ".join(t.pushed_to)
    if t.pushed_bytes is not None:
        pushed = f"{names or 'layers'} ({size(t.pushed_bytes)})"
    else:
        pushed = f"{names} (bytes not recorded)" if names else "nothing"
    rows = [
        ("Pulled", f"{size(t.pulled_bytes)} in {t.pulled_blobs} layer blobs"),
        ("Context sent", size(t.context_bytes)),
        ("Pushed", text(pushed)),
        ("Exported", _bytes(t.exported_bytes)),
        (
            "Cache hit rate",
            f'<span id="cache-rate">{rate}</span> ({cache.cached} of {cache.cacheable} steps'
            f' cached; <span class="note">{text(CACHEABLE)}</span>)',
        ),
    ]
    return f"<section><h2>Transfers and cache</h2>{_facts(rows, 'totals')}</section>"


def render_html(report: Report) -> str:
    """The whole page."""
    title = text(clip(report.name or report.ref, 120))
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>Build report: {title}</title><style>{_STYLE}</style></head><body>",
            _summary(report),
            _advice(report),
            '<section><h2>Timeline</h2><div class="chart">',
            timeline_svg(report),
            "</div></section>",
            _slowest(report),
            _totals(report),
            "</body></html>\n",
        ]
    )


__all__ = ["render_html"]
