"""`polybuild du`: the build cache of a builder's nodes, as `docker buildx du` prints it.

A BuildKit daemon node lists its cache records (Control.DiskUsage, --filter passed through
as buildx passes it); this machine's node lists what its data root keeps as records of the
same kinds (polybuild.disk_usage) and applies the filters itself. All nodes' records make
one table (each node's smallest first, as BuildKit's client sorts them), then buildx's
summary unless a filter was given. An ssh node keeps its cache in its own data root: run
`polybuild du` there.
"""

from __future__ import annotations

import asyncio
import datetime
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from polybuild.buildkit.records import CacheRecord
from polybuild.cache_filters import BAD_FORMAT, CacheFilters, split_filter
from polybuild.cli.go_format import PRETTY, TABLE, Format, Item, go_json, item, write
from polybuild.errors import UsageError
from polybuild.imagetools.gotemplate import Nil

if TYPE_CHECKING:
    from polybuild.builders import Node


class FilterValue(click.ParamType):
    """A `--filter KEY=VALUE` (docker's filter flag refuses a value without `=`)."""

    name = "filter"

    def convert(self, value: str, param: click.Parameter | None, ctx: click.Context | None) -> str:
        try:
            split_filter(value)
        except ValueError:
            self.fail(BAD_FORMAT, param, ctx)
        return value


def human_size(size: float) -> str:
    """go-units' HumanSize: decimal units, four significant digits (1.704GB, 318MB, 0B)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if size < 1000 or unit == "PB":
            return f"{size:.4g}{unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _ago(timestamp: float | None, now: float) -> str:
    from polybuild.history.show import human_duration

    return f"{human_duration(now - timestamp)} ago" if timestamp is not None else ""


def go_time(timestamp: float | None) -> str:
    """Go's Time.String() of a UTC time (`2025-06-12 15:44:02.715795569 +0000 UTC`; the
    zero time when unknown)."""
    if timestamp is None:
        return "0001-01-01 00:00:00 +0000 UTC"
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return (
        moment.strftime("%Y-%m-%d %H:%M:%S") + (f".{fraction}" if fraction else "") + (" +0000 UTC")
    )


DU_DEFAULT = "table {{.ID}}\t{{.Reclaimable}}\t{{.Size}}\t{{.LastUsedAt}}"
DU_HEADERS = {
    "ID": "ID",
    "Parents": "PARENTS",
    "CreatedAt": "CREATED AT",
    "Mutable": "MUTABLE",
    "Reclaimable": "RECLAIMABLE",
    "Shared": "SHARED",
    "Size": "SIZE",
    "Description": "DESCRIPTION",
    "UsageCount": "USAGE COUNT",
    "LastUsedAt": "LAST ACCESSED",
    "Type": "TYPE",
}


def _du_item(r: CacheRecord, format_: Format, now: float) -> Item:
    """A record as buildx's diskusageContext shows it (`*` after a mutable record's ID and
    a shared one's size in tables); its JSON has every method's value, keys sorted."""
    table = format_.is_table
    methods: dict[str, Callable[[], Any]] = {
        "ID": lambda: r.id + ("*" if table and r.mutable else ""),
        "Parents": lambda: list(r.parents) if r.parents else Nil("[]string"),
        "CreatedAt": lambda: go_time(r.created_at),
        "Mutable": lambda: r.mutable,
        "Reclaimable": lambda: r.reclaimable,
        "Shared": lambda: r.shared,
        "Size": lambda: human_size(r.size) + ("*" if table and r.shared else ""),
        "Description": lambda: r.description,
        "UsageCount": lambda: r.usage_count,
        "LastUsedAt": lambda: _ago(r.last_used, now),
        "Type": lambda: r.record_type,
    }

    def marshal() -> str:
        return go_json({k: method() for k, method in methods.items()}, escape_html=True)

    return item("commands.diskusageContext", {**methods, "FullHeader": lambda: DU_HEADERS}, marshal)


def formatted(records: Sequence[CacheRecord], format_text: str, now: float) -> str:
    """The records through docker's formatter (`table`: buildx's default table)."""
    format_ = Format(DU_DEFAULT if format_text == TABLE else format_text)
    return write(format_, [_du_item(r, format_, now) for r in records], DU_HEADERS)


def table(records: Sequence[CacheRecord], now: float) -> str:
    """buildx's default table: `*` after a mutable record's ID and a shared one's size."""
    return formatted(records, TABLE, now)


def pretty(records: Sequence[CacheRecord], now: float) -> str:
    """buildx's `--verbose` (`--format=pretty`) template, each record then an empty line."""
    out = []
    for r in records:
        lines = [f"ID:           {r.id}"]
        if r.parents:
            lines += ["Parents:", *(f" - {p}" for p in r.parents)]
        lines += [
            f"Created at:   {go_time(r.created_at)}",
            f"Mutable:      {str(r.mutable).lower()}",
            f"Reclaimable:  {str(r.reclaimable).lower()}",
            f"Shared:       {str(r.shared).lower()}",
            f"Size:         {human_size(r.size)}",
        ]
        if r.description:
            lines.append(f"Description:  {r.description}")
        lines.append(f"Usage count:  {r.usage_count}")
        if r.last_used is not None:
            lines.append(f"Last used:    {_ago(r.last_used, now)}")
        if r.record_type:
            lines.append(f"Type:         {r.record_type}")
        out.append("\n".join(lines) + "\n\n")
    return "".join(out)


def summary(records: Sequence[CacheRecord]) -> str:
    """buildx's printSummary (a tab-padded tabwriter): Shared and Private only when some
    record is shared."""
    total = sum(r.size for r in records if r.size > 0)
    reclaimable = sum(r.size for r in records if r.size > 0 and r.reclaimable)
    shared = sum(r.size for r in records if r.shared)
    lines = []
    if shared > 0:
        lines += [f"Shared:\t\t{human_size(shared)}", f"Private:\t{human_size(total - shared)}"]
    lines += [f"Reclaimable:\t{human_size(reclaimable)}", f"Total:\t\t{human_size(total)}"]
    return "\n".join(lines) + "\n"


@click.command("du")
@click.option("--builder", "builder_option", default=None, help="Override the configured builder.")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    type=FilterValue(),
    metavar="KEY=VALUE",
    help="Show only matching records: type=, id=, description~=REGEXP, parents=, "
    "inuse=, mutable=, shared=, private=, KEY!=VALUE (until= is accepted and, as in buildx, "
    "not applied).",
)
@click.option("--verbose", is_flag=True, help='Shorthand for "--format=pretty".')
@click.option(
    "--format",
    "format_",
    default="",
    help="table, pretty, json, or a Go template over .ID, .Parents, .CreatedAt, .Mutable, "
    ".Reclaimable, .Shared, .Size, .Description, .UsageCount, .LastUsedAt, .Type.",
)
def command(
    builder_option: str | None, filters: tuple[str, ...], verbose: bool, format_: str
) -> None:
    """Show the build cache of the builder's nodes."""
    from polybuild.builders import BuilderStore
    from polybuild.cache_filters import parse_filters
    from polybuild.dataroot import data_root

    if format_ and verbose:
        raise UsageError("--format and --verbose cannot be used together")
    format_ = format_ or (PRETTY if verbose else TABLE)
    parsed = parse_filters(filters)
    root = data_root()
    store = BuilderStore(root)
    builder = store.get(builder_option) if builder_option else store.current()
    records: list[CacheRecord] = []
    local_done = False
    for node in builder.nodes:
        if node.is_buildkit:
            records += _daemon(node, parsed)
        elif node.is_local and not local_done:
            local_done = True
            records += _local(root, parsed)
        elif not node.is_local:
            click.echo(f"{node.name} ({node.endpoint}): its cache is in its own data root; "
                       "run `polybuild du` there", err=True)  # fmt: skip
    now = time.time()
    pretty_ = format_ == PRETTY
    click.echo(pretty(records, now) if pretty_ else formatted(records, format_, now), nl=False)
    if format_ in (TABLE, PRETTY, DU_DEFAULT) and not filters:  # buildx: its own formats only
        click.echo(summary(records), nl=False)


def _sorted(records: Sequence[CacheRecord]) -> list[CacheRecord]:
    return sorted(records, key=lambda r: (r.size, r.id))


def _daemon(node: Node, parsed: CacheFilters) -> list[CacheRecord]:
    from polybuild.imagebuild.buildkit_driver import daemon_disk_usage

    return _sorted(asyncio.run(daemon_disk_usage(node, parsed.selectors)))


def _local(root: Path, parsed: CacheFilters) -> list[CacheRecord]:
    from polybuild.cache_filters import record_matches
    from polybuild.disk_usage import local_records

    found = local_records(root)
    return _sorted([r for r in found if record_matches(r, parsed.selectors)])
