"""Builder commands as buildx has them: `ls`, `create`, `use`, `inspect`, `rm`."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import click

from polybuild import __version__
from polybuild.errors import UsageError

if TYPE_CHECKING:
    from polybuild.builders import BuilderStore

REMOTE_SCHEMES = ("ssh://", "tcp://", "docker-container://", "kube-pod://")


def _store() -> BuilderStore:
    from polybuild.builders import BuilderStore
    from polybuild.dataroot import data_root, make_private

    return BuilderStore(make_private(data_root()))


def _platforms_text(node: object, bootstrap: bool) -> str:
    from polybuild.binfmt.probe import runnable_platforms
    from polybuild.builders import Node
    from polybuild.platforms import format_platform

    assert isinstance(node, Node)
    configured = [format_platform(p) + "*" for p in node.platforms]
    if not bootstrap:
        return ", ".join(configured)
    seen = {p.rstrip("*") for p in configured}
    detected = [format_platform(p) for p in runnable_platforms() if format_platform(p) not in seen]
    return ", ".join([*configured, *detected])


@click.command("ls")
def ls_command() -> None:
    """List builders and their nodes (the one in use is marked *)."""
    store = _store()
    current = store.current().name
    rows = [("NAME/NODE", "DRIVER/ENDPOINT", "STATUS", "POLYBUILD", "PLATFORMS")]
    for builder in store.list():
        mark = " *" if builder.name == current else ""
        rows.append((builder.name + mark, builder.driver, "", "", ""))
        for node in builder.nodes:
            rows.append(
                (
                    "  " + node.name,
                    node.endpoint,
                    "running",
                    __version__,
                    _platforms_text(node, bootstrap=True),
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        click.echo(
            "  ".join(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)) + "  " + row[4]
        )


@click.command("create")
@click.option("--name", default=None, help="Builder name (default: generated).")
@click.option("--driver", default="local", show_default=True, help="Driver: local (this machine).")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="PLATFORMS",
    help="Platforms this node builds first (comma separated).",
)
@click.option("--append", is_flag=True, help="Add a node to an existing builder.")
@click.option("--node", default=None, help="Name of the node to create or replace.")
@click.option("--use", "use_", is_flag=True, help="Use the builder from now on.")
@click.option("--bootstrap", is_flag=True, help="Check the node right away.")
@click.argument("endpoint", required=False, default="local")
def create_command(
    name: str | None,
    driver: str,
    platforms: tuple[str, ...],
    append: bool,
    node: str | None,
    use_: bool,
    bootstrap: bool,
    endpoint: str,
) -> None:
    """Create a builder (or, with --append, add a node to one)."""
    from polybuild.builders import Builder, Node, with_node
    from polybuild.platforms import parse_list

    if driver not in ("local", "docker-container"):
        raise UsageError(f"--driver: unsupported driver {driver!r}", hint="use --driver local")
    if endpoint.startswith(REMOTE_SCHEMES):
        raise UsageError(
            f"remote nodes ({endpoint}) are not supported yet",
            hint="polybuild builds on this machine; emulate other platforms with "
            "`polybuild binfmt --install all`",
        )
    if endpoint not in ("local", "default", "unix:///var/run/docker.sock"):
        raise UsageError(f"unknown endpoint {endpoint!r}", hint="leave it out for this machine")
    store = _store()
    if append:
        if not name:
            raise UsageError("--append needs --name of the builder to add to")
        builder = store.get(name)
        node_name = node or f"{builder.name}{len(builder.nodes)}"
        builder = with_node(builder, Node(node_name, "local", parse_list(list(platforms))))
    else:
        name = name or f"builder-{secrets.token_hex(3)}"
        existing = {b.name for b in store.list()}
        if name in existing:
            raise UsageError(
                f"builder {name!r} already exists",
                hint="use --append to add a node, or polybuild rm first",
            )
        builder = Builder(
            name, "local", (Node(node or f"{name}0", "local", parse_list(list(platforms))),)
        )
    store.save(builder)
    if use_:
        store.use(builder.name)
    if bootstrap:
        _platforms_text(builder.nodes[-1], bootstrap=True)
    click.echo(builder.name)


@click.command("use")
@click.argument("name")
def use_command(name: str) -> None:
    """Use builder NAME for the following builds."""
    _store().use(name)


@click.command("inspect")
@click.option("--bootstrap", is_flag=True, help="Check the nodes and list what they run.")
@click.argument("name", required=False)
def inspect_command(bootstrap: bool, name: str | None) -> None:
    """Show a builder's nodes and the platforms each builds."""
    store = _store()
    builder = store.get(name) if name else store.current()
    click.echo(f"Name:   {builder.name}")
    click.echo(f"Driver: {builder.driver}")
    click.echo("\nNodes:")
    for node in builder.nodes:
        click.echo(f"Name:      {node.name}")
        click.echo(f"Endpoint:  {node.endpoint}")
        click.echo("Status:    running")
        click.echo(f"Polybuild: {__version__}")
        click.echo(f"Platforms: {_platforms_text(node, bootstrap=True)}")
        click.echo()


@click.command("rm")
@click.argument("names", nargs=-1, required=True)
def rm_command(names: tuple[str, ...]) -> None:
    """Remove builders."""
    store = _store()
    for name in names:
        store.remove(name)
        click.echo(f"{name} removed", err=True)
