"""Builder commands as buildx has them: `create`, `ls`, `inspect`, `use`, `rm`, `stop`."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING

import click

from polybuild.errors import BuilderNotFoundError, PolybuildError, UsageError

if TYPE_CHECKING:
    from polybuild.builders import Builder, BuilderStore

_BUILDER_OPTION = click.option(
    "--builder", "builder_option", default=None, help="Override the configured builder."
)


def _store() -> BuilderStore:
    from polybuild.builders import BuilderStore
    from polybuild.dataroot import data_root, make_private

    return BuilderStore(make_private(data_root()))


def _named(store: BuilderStore, *names: str | None) -> Builder:
    """The first builder named (argument, then --builder), else $BUILDX_BUILDER or the current."""
    name = next((n for n in names if n), None)
    return store.get(name) if name else store.current()


@click.command("create")
@click.option("--name", default=None, help="Builder name (default: generated).")
@click.option(
    "--driver",
    default=None,
    help="local (polybuild's own: this machine, or ssh:// for another; no daemon) or remote "
    "(a BuildKit daemon at tcp://HOST:PORT or unix:///PATH).",
)
@click.option("--node", default=None, help="Create or change the node with this name.")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="PLATFORMS",
    help="Platforms this node builds first (comma separated; pinned, marked * by ls).",
)
@click.option(
    "--driver-opt",
    "driver_opts",
    multiple=True,
    metavar="K=V",
    help="Options for ssh nodes: connect-timeout=SECONDS (default 20), polybuild=COMMAND "
    "(run on the node; default polybuild on its PATH); for BuildKit daemons (--driver "
    "remote): cacert=, cert=, key= (PEM files), servername=, connect-timeout=.",
)
@click.option("--append", is_flag=True, help="Add a node to an existing builder.")
@click.option("--leave", is_flag=True, help="Remove the node --node from builder --name.")
@click.option("--use", "use_", is_flag=True, help="Use the builder from now on.")
@click.option("--bootstrap", is_flag=True, help="Connect to the nodes right away.")
@click.argument("endpoint", required=False, default=None)
def create_command(
    name: str | None,
    driver: str | None,
    node: str | None,
    platforms: tuple[str, ...],
    driver_opts: tuple[str, ...],
    append: bool,
    leave: bool,
    use_: bool,
    bootstrap: bool,
    endpoint: str | None,
) -> None:
    """Create a builder, add a node (--append), change one (--node) or remove one (--leave).

    ENDPOINT is this machine when left out, or ssh://[user@]host[:port]: a machine reached
    with your own ssh client and ~/.ssh/config, with polybuild installed; with --driver
    remote, a BuildKit daemon at tcp://HOST:PORT or unix:///PATH.
    """
    from polybuild.builders import edit, validate_name
    from polybuild.platforms import parse_list

    store = _store()
    if leave:
        if not name or not node:
            raise UsageError("--leave needs --name of the builder and --node to remove")
        with store.locked():
            store.save(edit.leave(store.get(name), node))
        return
    if append and not name:
        raise UsageError("--append needs --name of the builder to add a node to")
    if driver in edit.DRIVER_ALIASES:
        # buildx scripts say docker-container; never store it silently as something else.
        click.echo(
            f"polybuild: --driver {driver} is polybuild's own driver here (local): the "
            "builder runs no container and no daemon; each build runs polybuild on the "
            "node itself (this machine, or ssh://). Use --driver remote for a BuildKit daemon.",
            err=True,
        )
    opts = _absolute(edit.parse_driver_opts(driver_opts))
    change = edit.NodeChange(node or "", endpoint, parse_list(list(platforms)), opts)
    with store.locked():
        name = validate_name(name) if name else f"builder_{secrets.token_hex(6)}"
        builder = edit.create(store.find(name), name, change, driver=driver, append=append)
        store.save(builder)
        if use_:
            store.use(builder.name)
    if bootstrap:
        _bootstrap_or_fail(builder)
    click.echo(builder.name)


def _absolute(
    opts: tuple[tuple[str, str], ...] | None,
) -> tuple[tuple[str, str], ...] | None:
    """TLS file options as absolute paths, resolved from here (as buildx does)."""
    if opts is None:
        return None
    files = ("cacert", "cert", "key")
    return tuple(
        (k, str(Path(v).expanduser().absolute()) if k in files and v else v) for k, v in opts
    )


def _bootstrap_or_fail(builder: Builder) -> None:
    from polybuild.cli.builders_status import node_statuses

    failures = node_statuses(builder, connect=True).failures
    if failures:
        node, error = failures[0]
        click.echo(f"builder {builder.name} is saved, but node {node.name} failed:", err=True)
        raise error


@click.command("use")
@click.option("--default", "default_", is_flag=True, help="Accepted as buildx (no contexts).")
@click.option("--global", "global_", is_flag=True, help="Accepted as buildx (no contexts).")
@_BUILDER_OPTION
@click.argument("name", required=False)
def use_command(
    default_: bool, global_: bool, builder_option: str | None, name: str | None
) -> None:
    """Use builder NAME for the following builds (`default`: this machine's builder).

    polybuild has no Docker contexts, so --default and --global change nothing: the choice
    holds for every build until the next `use`.
    """
    del default_, global_
    chosen = name or builder_option
    if not chosen:
        raise UsageError("use needs the NAME of a builder", hint="list them with polybuild ls")
    _store().use(chosen)


@click.command("ls")
@click.option(
    "--format",
    "format_",
    default="table",
    show_default=True,
    help="table, json, or a Go template (`table {{.Name}}\\t{{.Status}}` for columns).",
)
@click.option("--no-trunc", is_flag=True, help="Show every platform in the table.")
def ls_command(format_: str, no_trunc: bool) -> None:
    """List builders and their nodes (the one in use is marked *) without connecting to them.

    A template sees .Name, .DriverEndpoint, .Status, .Buildkit, .Platforms, .LastActivity,
    .Error and .Builder (.Builder.Nodes) of each builder and node row, as buildx's.
    """
    from polybuild.cli.builders_show import ls_errors, ls_output
    from polybuild.cli.builders_status import node_statuses

    store = _store()
    unknown: BuilderNotFoundError | None = None
    try:
        current = store.current().name
    except BuilderNotFoundError as exc:  # $BUILDX_BUILDER: list what there is, then fail
        current, unknown = "", exc
    entries = [(b, [s for _, s in node_statuses(b, connect=False).nodes]) for b in store.list()]
    click.echo(ls_output(entries, current, format_, trunc=not no_trunc), nl=False)
    errors = ls_errors(entries)
    if errors and format_.startswith("table"):  # buildx lists failures under tables only
        click.echo("\n" + "\n".join(errors), err=True)
    if unknown is not None:
        raise unknown


@click.command("inspect")
@click.option("--bootstrap", is_flag=True, help="Connect to the nodes and list what they run.")
@_BUILDER_OPTION
@click.argument("name", required=False)
def inspect_command(bootstrap: bool, builder_option: str | None, name: str | None) -> None:
    """Show a builder's nodes: endpoint, status, polybuild version and platforms (pinned *).

    With --bootstrap every ssh node is asked at once (at most 10 s each); one that cannot be
    reached is shown with the reason, and the command then fails.
    """
    from polybuild.cli.builders_show import inspect_text
    from polybuild.cli.builders_status import node_statuses

    builder = _named(_store(), name, builder_option)
    statuses = node_statuses(builder, connect=bootstrap)
    click.echo(inspect_text(builder, [s for _, s in statuses.nodes]), nl=False)
    if statuses.failures:
        node, error = statuses.failures[0]
        raise PolybuildError(
            f"{len(statuses.failures)} of {len(builder.nodes)} nodes of {builder.name} "
            f"could not be reached (first: {node.name}, {node.endpoint})",
            hint=error.hint or "check the node with `ssh HOST polybuild version`",
        ) from error


@click.command("rm")
@click.option("-f", "--force", is_flag=True, help="Do not ask before --all-inactive.")
@click.option("--all-inactive", is_flag=True, help="Remove every builder no node of which answers.")
@click.option("--keep-state", is_flag=True, help="Accepted as buildx (node caches always stay).")
@_BUILDER_OPTION
@click.argument("names", nargs=-1)
def rm_command(
    force: bool,
    all_inactive: bool,
    keep_state: bool,
    builder_option: str | None,
    names: tuple[str, ...],
) -> None:
    """Remove builders (default: the one in use). Nodes keep their data roots and caches."""
    del keep_state
    store = _store()
    if all_inactive:
        if names:
            raise UsageError("cannot give builder names with --all-inactive")
        _remove_inactive(store, force)
        return
    targets = list(names) or [_named(store, builder_option).name]
    failed = False
    for name in targets:
        try:
            with store.locked():
                store.remove(name)
        except PolybuildError as exc:
            failed = True
            click.echo(f"failed to remove {name}: {exc}", err=True)
        else:
            click.echo(f"{name} removed", err=True)
    if failed:
        raise PolybuildError("failed to remove one or more builders")


def _remove_inactive(store: BuilderStore, force: bool) -> None:
    """buildx's --all-inactive: builders none of whose nodes answer (this machine always does)."""
    from polybuild.builders import DEFAULT_BUILDER
    from polybuild.builders.status import RUNNING
    from polybuild.cli.builders_status import node_statuses

    if not force and not click.confirm(
        "WARNING! This will remove all builders that are not in running state. "
        "Are you sure you want to continue?"
    ):
        return
    for builder in store.list():
        if builder.name == DEFAULT_BUILDER or any(n.is_local for n in builder.nodes):
            continue
        statuses = node_statuses(builder, connect=True).nodes
        if all(status.status != RUNNING for _, status in statuses):
            with store.locked():
                store.remove(builder.name)
            click.echo(f"{builder.name} removed", err=True)


@click.command("stop")
@_BUILDER_OPTION
@click.argument("name", required=False)
def stop_command(builder_option: str | None, name: str | None) -> None:
    """Stop a builder: a no-op kept for buildx scripts, as nothing of polybuild runs between
    builds (no daemon here, and an ssh node's polybuild exits with the build's connection)."""
    _named(_store(), name, builder_option)  # an unknown builder is still an error
