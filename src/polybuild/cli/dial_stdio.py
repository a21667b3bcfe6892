"""`polybuild dial-stdio` (hidden): serve polybuild's remote protocol on stdin and stdout.

A client runs it on a node over ssh, as docker runs `docker system dial-stdio`; there is no
daemon, the node's work lives exactly as long as the client's connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from polybuild.remote.node_solve import NodeBackend


@click.command("dial-stdio", hidden=True)
@click.option(
    "--protocol-version",
    type=int,
    default=None,
    hidden=True,
    help="Speak this protocol version instead of our own (tests of version mismatches).",
)
def command(protocol_version: int | None) -> None:
    """Serve the remote protocol on stdin/stdout (started by a polybuild client over ssh)."""
    from polybuild.remote.messages import PROTOCOL_VERSION
    from polybuild.remote.server import serve_stdio

    def backend() -> NodeBackend:
        # Imported on the first solve: `inspect --bootstrap` never loads the builder.
        from polybuild.imagebuild.remote_node import LocalBackend

        return LocalBackend()

    serve_stdio(
        protocol=PROTOCOL_VERSION if protocol_version is None else protocol_version,
        backend=backend,
    )
