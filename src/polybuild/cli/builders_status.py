"""Finding out how a builder's nodes are: this machine by probing it, ssh nodes by asking them.

Remote nodes are asked only when the command bootstraps (`inspect --bootstrap`, `create
--bootstrap`): all at once on one event loop, each for at most `timeout` seconds, so one
dead machine costs seconds, not minutes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from polybuild import __version__
from polybuild.builders import Builder, Node
from polybuild.builders.status import INACTIVE, RUNNING, NodeStatus, unreachable
from polybuild.errors import PolybuildError
from polybuild.platforms import format_platform

BOOTSTRAP_TIMEOUT = 10.0  # seconds per node (they are asked at the same time)
_GRACE = 2.0  # on top of the timeout the connection itself enforces

Bootstrap = Callable[[Node, float], Awaitable[NodeStatus]]


async def remote_bootstrap(node: Node, timeout: float) -> NodeStatus:
    """Ask the polybuild of an ssh node, or a BuildKit daemon, its version and platforms."""
    if node.is_buildkit:
        from polybuild.imagebuild.buildkit_driver import daemon_status

        daemon, detected = await daemon_status(node, timeout)
        platforms = tuple(format_platform(p) for p in detected.platforms)
        return NodeStatus(RUNNING, daemon.version, platforms)
    from polybuild.remote.client import bootstrap

    info = await bootstrap(node.endpoint, timeout=timeout, polybuild=node.options.polybuild)
    emulated = tuple(p for p in info.emulated if p not in info.native)
    return NodeStatus(RUNNING, info.polybuild, (*info.native, *emulated))


def local_status() -> NodeStatus:
    """This machine: always there; what it runs natively and through binfmt_misc."""
    from polybuild.binfmt.probe import runnable_platforms
    from polybuild.platforms import format_platform

    return NodeStatus(RUNNING, __version__, tuple(format_platform(p) for p in runnable_platforms()))


@dataclass(slots=True)
class Statuses:
    """Each node's status (in the builder's order) and the errors of those that failed."""

    nodes: list[tuple[Node, NodeStatus]]
    failures: list[tuple[Node, PolybuildError]] = field(default_factory=list)


async def _ask(node: Node, timeout: float, bootstrap: Bootstrap) -> NodeStatus | PolybuildError:
    if "connect-timeout" in dict(node.driver_opts):
        timeout = node.options.connect_timeout
    try:
        async with asyncio.timeout(timeout + min(_GRACE, timeout)):  # if the transport hangs
            return await bootstrap(node, timeout)
    except TimeoutError:
        return PolybuildError(f"node {node.endpoint}: no answer within {timeout:g} s")
    except PolybuildError as exc:
        return exc
    except OSError as exc:  # the ssh client could not even be started
        return PolybuildError(f"node {node.endpoint}: {exc}")


async def _ask_all(
    nodes: list[Node], timeout: float, bootstrap: Bootstrap
) -> list[NodeStatus | PolybuildError]:
    return list(await asyncio.gather(*(_ask(n, timeout, bootstrap) for n in nodes)))


def node_statuses(
    builder: Builder,
    *,
    connect: bool,
    timeout: float = BOOTSTRAP_TIMEOUT,
    bootstrap: Bootstrap | None = None,
    local: Callable[[], NodeStatus] | None = None,
) -> Statuses:
    """Every node's status; remote ones `inactive` unless `connect` asks them (concurrently).

    `bootstrap` and `local` default to `remote_bootstrap` and `local_status` (looked up when
    called, so tests can replace them).
    """
    bootstrap = bootstrap or remote_bootstrap
    local = local or local_status
    remote = [n for n in builder.nodes if not n.is_local]
    answers: dict[str, NodeStatus | PolybuildError] = {}
    if connect and remote:
        answers = dict(
            zip(
                (n.name for n in remote),
                asyncio.run(_ask_all(remote, timeout, bootstrap)),
                strict=True,
            )
        )
    local_result: NodeStatus | None = None
    statuses = Statuses([])
    for node in builder.nodes:
        result: NodeStatus | PolybuildError
        if node.is_local:
            local_result = result = local_result or local()
        else:
            result = answers.get(node.name, NodeStatus(INACTIVE))
        if isinstance(result, PolybuildError):
            statuses.failures.append((node, result))
            result = unreachable(str(result))
        statuses.nodes.append((node, result))
    return statuses


__all__ = [
    "BOOTSTRAP_TIMEOUT",
    "Bootstrap",
    "Statuses",
    "local_status",
    "node_statuses",
    "remote_bootstrap",
]
