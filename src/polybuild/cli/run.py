"""`polybuild run`: run a command in a new container of a stored image, on any platform."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass

import click

from polybuild.errors import UsageError


@dataclass(frozen=True, slots=True)
class RunCommandOptions:
    image: str
    command: tuple[str, ...]
    platform: str | None
    all_platforms: bool
    env: tuple[str, ...]
    workdir: str | None
    user: str | None
    network: str
    entrypoint: str | None
    hostname: str | None
    interactive: bool


def _env_items(items: tuple[str, ...]) -> tuple[str, ...]:
    """-e K=V as given; -e K takes K's value from this environment, or is dropped (docker)."""
    result = []
    for item in items:
        if "=" in item:
            result.append(item)
        elif item in os.environ:
            result.append(f"{item}={os.environ[item]}")
    return tuple(result)


def run_run(options: RunCommandOptions) -> int:
    """Run the image's process; the exit code is the container's (the largest with --all)."""
    from polybuild.platforms import format_platform, parse
    from polybuild.runtime import RunOptions, Runtime, process_for, select_for_run

    if options.all_platforms and options.platform:
        raise UsageError("--platform and --all-platforms cannot be used together")
    runtime = Runtime()
    platform = parse(options.platform) if options.platform else None
    selected = select_for_run(
        runtime.store,
        options.image,
        platform,
        all_platforms=options.all_platforms,
        warn=lambda message: click.echo(f"WARNING: {message}", err=True),
    )
    run_options = RunOptions(
        command=options.command,
        entrypoint=options.entrypoint,
        env=_env_items(options.env),
        workdir=options.workdir,
        user=options.user,
        network="private" if options.network in ("default", "bridge") else options.network,
        hostname=options.hostname,
    )
    if not options.all_platforms:
        choice = selected[0]
        process = process_for(choice.config.value, run_options)
        stdin = None if options.interactive else subprocess.DEVNULL
        return runtime.run(choice.manifest, choice.config, process, stdin=stdin).code
    worst = 0
    for choice in selected:
        process = process_for(choice.config.value, run_options)
        label = format_platform(choice.platform)
        with tempfile.TemporaryFile() as out:
            status = runtime.run(
                choice.manifest,
                choice.config,
                process,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            out.seek(0)
            lines = out.read().decode(errors="replace").splitlines() or [""]
        for line in lines:
            click.echo(f"{label:<14} | {line}")
        if status.code:
            click.echo(f"{label:<14} | (exit code {status.code})", err=True)
        worst = max(worst, status.code)
    return worst


# Options end at IMAGE: everything after it is the container's command, as with docker run.
@click.command("run", context_settings={"allow_interspersed_args": False})
@click.option(
    "--platform", metavar="PLATFORM", help="Run this platform's variant (os/arch[/variant])."
)
@click.option("--all-platforms", is_flag=True, help="Run the command once in every variant.")
@click.option("--rm", is_flag=True, help="Remove the container when it exits (always done).")
@click.option("-e", "--env", multiple=True, metavar="K=V", help="Set an environment variable.")
@click.option("-w", "--workdir", metavar="DIR", help="Working directory inside the container.")
@click.option("-u", "--user", metavar="USER[:GROUP]", help="User name or uid (and group).")
@click.option(
    "--network",
    type=click.Choice(["default", "bridge", "private", "host", "none"]),
    default="default",
    show_default=True,
    help="Network mode: a private network with outbound access (default, bridge), the "
    "host's network (host), or only loopback (none).",
)
@click.option("--entrypoint", metavar="CMD", help="Override the image's entrypoint.")
@click.option("-h", "--hostname", metavar="NAME", help="Container host name.")
@click.option("-i", "--interactive", is_flag=True, help="Keep stdin open to the process.")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def command(
    image: str,
    command: tuple[str, ...],
    platform: str | None,
    all_platforms: bool,
    rm: bool,
    env: tuple[str, ...],
    workdir: str | None,
    user: str | None,
    network: str,
    entrypoint: str | None,
    hostname: str | None,
    interactive: bool,
) -> None:
    """Run COMMAND in a new container of IMAGE (from the local store).

    The variant matching this machine is chosen (containerd's rules), or the one --platform
    names, or the one pinned by IMAGE@sha256:...; foreign variants run under QEMU.
    """
    del rm  # containers are always removed: polybuild keeps no stopped containers
    code = run_run(
        RunCommandOptions(
            image,
            command,
            platform,
            all_platforms,
            env,
            workdir,
            user,
            network,
            entrypoint,
            hostname,
            interactive,
        )
    )
    sys.exit(code)
