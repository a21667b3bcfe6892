"""`polybuild binfmt`: show, install and remove QEMU emulators (tonistiigi/binfmt built in)."""

from __future__ import annotations

import json

import click

from polybuild.errors import UsageError


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
def command(install_: tuple[str, ...], uninstall: tuple[str, ...], verbose: bool) -> None:
    """Print the platforms this host can run and the emulators registered in binfmt_misc.

    With --install, register QEMU user-mode emulators from the host's qemu-user-static
    package first; with --uninstall, remove handlers. The JSON status is printed last.
    """
    from polybuild import binfmt

    if install_ and uninstall:
        raise UsageError("--install and --uninstall cannot be used together")
    for outcome in binfmt.install(list(install_)) if install_ else []:
        click.echo(f"installing: {outcome}", err=True)
    for outcome in binfmt.uninstall(list(uninstall)) if uninstall else []:
        click.echo(f"uninstalling: {outcome}", err=True)
    click.echo(json.dumps(binfmt.status(), indent=2))
    if verbose:
        from polybuild.binfmt.probe import cached_probe

        for probe in cached_probe():
            if not probe.runnable:
                detail = f" ({probe.detail})" if probe.detail else ""
                click.echo(f"{probe.arch}: {probe.status.value}{detail}", err=True)
