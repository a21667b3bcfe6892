"""A build's report written to a file (`history inspect --format html -o`, `build --report`):
HTML, or JSON for `.json` paths, written whole or not at all (a temporary file beside the
target, then a rename)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from polybuild.errors import UsageError
from polybuild.history.record import BuildRecord
from polybuild.image.content import write_file_atomic
from polybuild.insight.html_report import render_html
from polybuild.insight.report_data import build_report, report_json

HTML = "html"
JSON = "json"
FORMATS = (HTML, JSON)


def report_format(path: Path, fmt: str | None = None) -> str:
    """`fmt` when given, else JSON for a `.json` path and HTML for any other."""
    if fmt is None:
        return JSON if path.suffix.lower() == ".json" else HTML
    if fmt not in FORMATS:
        raise UsageError(f"unknown report format {fmt!r}", hint="use html or json")
    return fmt


def render_report(
    record: BuildRecord,
    fmt: str,
    *,
    history: Sequence[BuildRecord] = (),
    factors: Mapping[str, float] | None = None,
) -> str:
    """The report of `record` as text in `fmt` (HTML or JSON)."""
    report = build_report(record, history=history, factors=factors)
    if fmt == JSON:
        return json.dumps(report_json(report), indent=2, ensure_ascii=False) + "\n"
    return render_html(report)


def write_atomically(path: Path, data: str) -> None:
    """`data` at `path`, replacing what was there only once all of it is written; a path that
    is a directory, or whose directory does not exist, is a UsageError naming it."""
    if path.is_dir():
        raise UsageError(f"cannot write the report to {path}: it is a directory")
    parent = path.parent
    if not parent.is_dir():
        raise UsageError(f"cannot write the report to {path}: no directory {parent}")
    # a record's text may hold lone surrogates (undecodable file names): written as "?"
    encoded = data.encode("utf-8", "replace")
    write_file_atomic(path, encoded, 0o644)  # the store's errors: disk full, permissions


def write_report(
    record: BuildRecord,
    path: Path,
    *,
    fmt: str | None = None,
    history: Sequence[BuildRecord] = (),
    factors: Mapping[str, float] | None = None,
) -> None:
    """The report of `record` at `path`: HTML, or JSON when `fmt` is "json" (or None and the
    path ends in `.json`). `history` holds earlier builds (newest first), `factors` QEMU's
    measured slow-down per platform."""
    chosen = report_format(path, fmt)
    write_atomically(path, render_report(record, chosen, history=history, factors=factors))


__all__ = ["FORMATS", "HTML", "JSON", "render_report", "report_format", "write_report"]
