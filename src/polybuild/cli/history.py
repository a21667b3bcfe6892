"""`polybuild history ls|inspect|logs|rm`: past builds of this data root (docker buildx
history). Records are written by every build (history/); refs may be given whole, as a
unique prefix, or as `^N` (the Nth latest, `^0` the latest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import click

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


@command.command("ls")
@click.option(
    "--format", "format_", default="table", help="Format the output (table, json, a Go template)."
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
    from polybuild.history.show import ls_json, ls_table

    now = time.time()
    records = apply_filters(_records(builder), filters, now)
    if local:
        top = _repository_root()
        records = [r for r in records if r.context == top or r.context.startswith(top + "/")]
    if format_ == "json":
        for record in records:
            click.echo(ls_json(record))
    elif format_ == "table":
        click.echo(ls_table(records, now, trunc=not no_trunc), nl=False)
    else:
        click.echo(_ls_template(format_, records, now, trunc=not no_trunc), nl=False)


def _ls_template(format_: str, records: list[BuildRecord], now: float, *, trunc: bool) -> str:
    """A Go template per record (`table TEMPLATE`: a header row and aligned columns)."""
    from polybuild.history.show import LS_HEADERS, align_table, ls_fields
    from polybuild.imagetools.gotemplate import compile_template, render

    table = format_.startswith("table")
    # docker's formatter: `table` dropped, blanks trimmed, `\t` and `\n` typed as escapes
    text = (format_.removeprefix("table") if table else format_).strip(" ")
    tree = compile_template(text.replace("\\t", "\t").replace("\\n", "\n"))
    rows = [render(tree, ls_fields(r, now, trunc=trunc and table)) for r in records]
    if not table:
        return "".join(row + "\n" for row in rows)
    return align_table([line.split("\t") for line in [render(tree, LS_HEADERS), *rows]])


@command.command("inspect")
@click.argument("ref", required=False, default="")
@click.option(
    "--format", "format_", default="pretty", help="Format the output (pretty, json, a Go template)."
)
def inspect_command(ref: str, format_: str) -> None:
    """Inspect a build record (default: the latest)."""
    from polybuild.history.show import inspect_json, inspect_text

    record = _store().find(ref)
    if format_ == "json":
        click.echo(json.dumps(inspect_json(record, os.getcwd()), indent=2, ensure_ascii=False))
    elif format_ == "pretty":
        click.echo(inspect_text(record, show_ref=not ref, cwd=os.getcwd()), nl=False)
    else:  # a Go template over the JSON's fields, as buildx's over its inspect output
        from polybuild.imagetools.gotemplate import render

        click.echo(render(format_, inspect_json(record, os.getcwd())))


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
