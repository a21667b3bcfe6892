"""The local transport: `python -m polybuild dial-stdio` as a child of this process, so the
protocol and the node side run end to end without ssh (tests, and a node's own self-check)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from polybuild.remote.process import ProcessLink, spawn

LOCAL_ENDPOINT = "local-process"


async def open_local(
    *, endpoint: str = LOCAL_ENDPOINT, dial_stdio_args: Sequence[str] = ()
) -> ProcessLink:
    """A link to a fresh `polybuild dial-stdio` on this machine, with the same interpreter."""
    argv = [sys.executable, "-m", "polybuild", "dial-stdio", *dial_stdio_args]
    return await spawn(endpoint, argv)
