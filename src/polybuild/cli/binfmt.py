"""`polybuild binfmt`: show, install and remove QEMU emulators (tonistiigi/binfmt built in)."""

from __future__ import annotations

import json

import click

from polybuild.errors import UsageError

# qemu_bench's defaults, kept here so that `polybuild binfmt` does not import the runtime
DEFAULT_IMAGE = "busybox"
DEFAULT_RUNS = 3


@click.command("binfmt")
@click.option(
    "--install",
    "install_",
    metavar="all|ARCH[,ARCH...]",
    multiple=True,
    help="Register QEMU handlers (with the F flag) for these architectures.",
)
@click.option(
    "--uninstall",
    metavar="NAME|all",
    multiple=True,
    help="Remove handlers by name (qemu-aarch64), glob (qemu-*) or all.",
)
@click.option(
    "--verbose", "-v", is_flag=True, help="Also print why each missing platform cannot run."
)
@click.option(
    "--bench",
    is_flag=True,
    help="Measure QEMU's slow-down (polybuild's own): run a fixed workload natively and "
    "under each emulator, print a table and store the factors for the emulation advisor "
    "(after --install/--uninstall, instead of the JSON status).",
)
@click.option(
    "--image",
    metavar="REF",
    default=None,
    help=f"With --bench: the multi-platform image with busybox's awk to run "
    f"(default {DEFAULT_IMAGE}).",
)
@click.option(
    "--bench-runs",
    type=click.IntRange(1, 20),
    default=DEFAULT_RUNS,
    show_default=True,
    help="With --bench: runs per platform (the median counts).",
)
def command(
    install_: tuple[str, ...],
    uninstall: tuple[str, ...],
    verbose: bool,
    bench: bool,
    image: str | None,
    bench_runs: int,
) -> None:
    """Print the platforms this host can run and the emulators registered in binfmt_misc.

    With --install, register QEMU user-mode emulators from the host's qemu-user-static
    package first; with --uninstall, remove handlers. The JSON status is printed last.

    With --bench (after any --install or --uninstall), measure how much slower each
    emulated platform runs a fixed CPU workload (busybox awk, timed inside the container)
    than the native one, print PLATFORM, SECONDS (median) and FACTOR, and store the factors
    in the data root (insight/qemu-factors.json), where the emulation advisor estimates
    native times from them. The image's index is fetched once (one attempt; without its
    registry, the local store's image of that name is used): a platform it lacks is
    skipped without a pull, as is one that fails.
    """
    from polybuild import binfmt

    if install_ and uninstall:
        raise UsageError("--install and --uninstall cannot be used together")
    if not bench and (image is not None or bench_runs != DEFAULT_RUNS):
        raise UsageError("--image and --bench-runs are options of --bench")
    for outcome in binfmt.install(list(install_)) if install_ else []:
        click.echo(f"installing: {outcome}", err=True)
    for outcome in binfmt.uninstall(list(uninstall)) if uninstall else []:
        click.echo(f"uninstalling: {outcome}", err=True)
    if bench:
        _bench(image or DEFAULT_IMAGE, bench_runs)
        return
    click.echo(json.dumps(binfmt.status(), indent=2))
    if verbose:
        from polybuild.binfmt.probe import cached_probe

        for probe in cached_probe():
            if not probe.runnable:
                detail = f" ({probe.detail})" if probe.detail else ""
                click.echo(f"{probe.arch}: {probe.status.value}{detail}", err=True)


def _bench(image: str, runs: int) -> None:
    from polybuild.progress.sanitize import clean
    from polybuild.qemu_bench import format_table, run_bench

    def report(message: str) -> None:  # quotes a container's output and registry errors
        click.echo(clean(message), err=True)

    result = run_bench(image, runs, report=report)
    for line in format_table(result):
        click.echo(line)
    click.echo(f"factors stored in {result.path}", err=True)
