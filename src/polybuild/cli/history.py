"""`polybuild history ls|inspect|logs|rm`: past builds of this data root (docker buildx
history). Records are written by every build (history/); refs may be given whole, as a
unique prefix, or as `^N` (the Nth latest, `^0` the latest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import click

from polybuild.cli.go_format import TABLE, Format, item, write
from polybuild.dataroot import data_root
from polybuild.errors import UsageError
from polybuild.history import BuildRecord, HistoryStore
from polybuild.history.filters import apply_filters


def _store() -> HistoryStore:
    def warn(message: str) -> None:
        click.echo(f"WARNING: {message}", err=True)

    return HistoryStore(data_root(), warn=warn)


def _records(builder: str | None) -> list[BuildRecord]:
    records = _store().records()
    return [r for r in records if r.builder == builder] if builder else records


def _repository_root() -> str:
    """The top of the git work tree holding the current directory (`--local`)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("git was not found in the system") from None
    if done.returncode != 0:
        raise UsageError(f"could not find git repository for local filter: {done.stderr.strip()}")
    return done.stdout.strip()


@click.group("history")
def command() -> None:
    """Commands to work on build records."""


LS_DEFAULT = "table {{.Ref}}\t{{.Name}}\t{{.Status}}\t{{.CreatedAt}}\t{{.Duration}}\t{{.Link}}"


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def ls_output(
    records: Sequence[BuildRecord], now: float, format_text: str = TABLE, *, trunc: bool = True
) -> str:
    """`history ls [--format]` through docker's formatter, as buildx's lsPrint."""
    from polybuild.history.show import LS_HEADERS, ls_fields, ls_json

    format_ = Format(LS_DEFAULT if format_text == TABLE else format_text)
    items = []
    for record in records:
        fields = ls_fields(record, now, trunc=trunc and format_.is_table)
        methods: dict[str, Callable[[], Any]] = {k: _constant(v) for k, v in fields.items()}
        methods["FullHeader"] = _constant(LS_HEADERS)
        items.append(item("history.lsContext", methods, _constant(ls_json(record))))
    return write(format_, items, LS_HEADERS)


@command.command("ls")
@click.option(
    "--format",
    "format_",
    default="table",
    help="table, json, or a Go template over .Ref, .FullRef, .Name, .Status, .CreatedAt, "
    ".Duration, .Link (`table {{.Ref}}\\t{{.Name}}` for columns).",
)
@click.option("--no-trunc", is_flag=True, help="Don't truncate output.")
@click.option(
    "--filter", "filters", multiple=True, help='Provide filter values (e.g., "status=error").'
)
@click.option("--local", is_flag=True, help="List records for current repository only.")
@click.option(
    "--builder",
    default=None,
    envvar="BUILDX_BUILDER",
    help="Only the records of this builder (default: $BUILDX_BUILDER, else every builder's).",
)
def ls_command(
    format_: str, no_trunc: bool, filters: tuple[str, ...], local: bool, builder: str | None
) -> None:
    """List build records (newest first)."""
    now = time.time()
    records = apply_filters(_records(builder), filters, now)
    if local:
        top = _repository_root()
        records = [r for r in records if r.context == top or r.context.startswith(top + "/")]
    click.echo(ls_output(records, now, format_, trunc=not no_trunc), nl=False)


def _report_inputs(
    record: BuildRecord,
) -> tuple[list[BuildRecord], dict[str, float]]:
    """The earlier builds (newest first, for native twins) and QEMU's measured factors."""
    from polybuild.insight.factors import load_factors

    history = [r for r in _store().records() if r.ref != record.ref and r.started <= record.started]
    return history, load_factors(data_root())


def inspect_output(record: BuildRecord, format_: str, *, show_ref: bool) -> str:
    """What `history inspect --format FORMAT` prints: buildx's text (pretty), its JSON with
    the timeline report's data under "Report" (json), the report page (html), or a Go
    template over buildx's JSON."""
    from polybuild.history.show import inspect_json, inspect_text

    if format_ == "pretty":
        return inspect_text(record, show_ref=show_ref, cwd=os.getcwd())
    if format_ in ("json", "html"):
        from polybuild.insight.report_file import render_report

        history, factors = _report_inputs(record)
        if format_ == "html":
            return render_report(record, "html", history=history, factors=factors)
        from polybuild.insight.report_data import build_report, report_json

        out = inspect_json(record, os.getcwd())
        out["Report"] = report_json(build_report(record, history=history, factors=factors))
        return json.dumps(out, indent=2, ensure_ascii=False) + "\n"
    from polybuild.imagetools.gotemplate import render

    return render(format_, inspect_json(record, os.getcwd())) + "\n"


@command.command("inspect")
@click.argument("ref", required=False, default="")
@click.option(
    "--format",
    "format_",
    default="pretty",
    help="Format the output: pretty, json (buildx's fields and the timeline report's data "
    'under "Report"), html (the timeline report: one self-contained page), or a Go template.',
)
@click.option(
    "-o",
    "--output",
    "output",
    default=None,
    metavar="FILE",
    help="Write the output to FILE (whole or not at all) instead of stdout.",
)
def inspect_command(ref: str, format_: str, output: str | None) -> None:
    """Inspect a build record (default: the latest)."""
    record = _store().find(ref)
    text = inspect_output(record, format_, show_ref=not ref)
    if output is None or output == "-":
        click.echo(text, nl=False)
        return
    from pathlib import Path

    from polybuild.insight.report_file import write_atomically

    write_atomically(Path(output), text)


@command.command("logs")
@click.argument("ref", required=False, default="")
@click.option(
    "--progress",
    default="plain",
    help="Set type of progress output (plain, rawjson, tty).",
)
def logs_command(ref: str, progress: str) -> None:
    """Print the logs of a build record, as its build's progress printed them."""
    from polybuild.history.replay import replay_events
    from polybuild.progress import make_renderer

    record = _store().find(ref)
    renderer = make_renderer("plain" if progress == "auto" else progress, sys.stderr, env={})
    try:
        for event in replay_events(record):
            renderer.emit(event)
    finally:
        renderer.close()


@command.command("rm")
@click.argument("refs", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Remove all build records.")
def rm_command(refs: tuple[str, ...], all_: bool) -> None:
    """Remove build records."""
    if not refs and not all_:
        raise UsageError("rm requires at least one argument")
    if refs and all_:
        raise UsageError("rm requires either --all or at least one argument")
    store = _store()
    if all_:
        store.clear()
    else:
        store.remove(refs)


__all__ = ["command"]
