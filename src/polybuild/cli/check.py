"""`polybuild check`: verify the data root, one line per problem; `--repair` fixes what it can."""

from __future__ import annotations

from dataclasses import dataclass

import click

from polybuild.errors import PolybuildError


@dataclass(frozen=True, slots=True)
class CheckOptions:
    repair: bool = False
    deep: bool = False


def run_check(options: CheckOptions) -> None:
    """Print each problem (and what --repair did); fail while any problem remains."""
    from polybuild.check import check_data_root
    from polybuild.runtime import Runtime

    runtime = Runtime()
    report = check_data_root(runtime, repair=options.repair, deep=options.deep)
    for outcome in report.outcomes:
        click.echo(outcome.line())
    for note in report.notes:
        click.echo(f"note: {note}")
    found = len(report.outcomes)
    repaired = found - len(report.remaining)
    click.echo(
        f"Checked {report.blobs} blobs, {report.images} images, {report.layers} unpacked layers "
        f"and {report.cache_records} cache records in {runtime.root}: "
        + (f"{found} problems" if found else "no problems")
        + (f", {repaired} repaired" if options.repair and found else "")
    )
    if not report.remaining:
        return
    if options.repair:
        raise PolybuildError(
            f"{len(report.remaining)} problems in {runtime.root} remain",
            hint="images that miss content work again once pulled, loaded or rebuilt "
            "(or removed with polybuild rmi)",
        )
    raise PolybuildError(
        f"{found} problems in {runtime.root}",
        hint="polybuild check --repair removes what is corrupt or left over "
        "(never an image) and says what to do about the rest",
    )


@click.command("check")
@click.option(
    "--repair",
    is_flag=True,
    help="Remove corrupt blobs, void cache records and leftovers of killed processes.",
)
@click.option(
    "--deep",
    is_flag=True,
    help="Also unpack every layer again and compare it with its unpacked copy (slow).",
)
def command(repair: bool, deep: bool) -> None:
    """Verify the data root: every blob's digest, every image's manifests, configs and
    layers, the build cache database, and what killed processes left behind.

    Prints one line per problem and exits non-zero if there is any. Refused while a build or
    run uses the data root. --repair never deletes an image: it says which ones miss content;
    an unpacked layer that differs from its blob (--deep) is removed and unpacked again.
    """
    run_check(CheckOptions(repair, deep))
