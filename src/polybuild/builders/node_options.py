"""What `--driver-opt K=V` means for an ssh node: the options polybuild knows, checked when
the node is created (an unknown key or a bad value is a UsageError naming it)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from polybuild.errors import UsageError

DEFAULT_CONNECT_TIMEOUT = 20.0
# A command name or an absolute path, as the node's shell will be handed it (quoted).
_COMMAND = re.compile(r"^(/[A-Za-z0-9._+/-]+|[A-Za-z0-9._+-]+)$")

KNOWN = {
    "connect-timeout": "seconds to wait for ssh and the node's answer (default 20)",
    "polybuild": "the polybuild command on the node: a name on its PATH or an absolute path "
    "(default polybuild)",
}


@dataclass(frozen=True, slots=True)
class NodeOptions:
    """An ssh node's options: how long to wait for it and what to run there."""

    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    polybuild: str = "polybuild"


def node_options(pairs: Iterable[tuple[str, str]]) -> NodeOptions:
    """The NodeOptions of a node's `--driver-opt` pairs."""
    options = NodeOptions()
    for key, value in pairs:
        if key == "connect-timeout":
            try:
                seconds = float(value)
            except ValueError:
                seconds = math.nan
            if not 0 < seconds <= 3600:
                raise UsageError(
                    f"--driver-opt connect-timeout={value}: expected seconds, from 1 to 3600"
                )
            options = NodeOptions(seconds, options.polybuild)
        elif key == "polybuild":
            if not _COMMAND.match(value) or ".." in value.split("/"):
                raise UsageError(
                    f"--driver-opt polybuild={value}: expected a command name or an absolute path"
                )
            options = NodeOptions(options.connect_timeout, value)
        else:
            known = "; ".join(f"{k}: {v}" for k, v in KNOWN.items())
            raise UsageError(
                f"--driver-opt: unknown option {key!r}", hint=f"ssh nodes take {known}"
            )
    return options


__all__ = ["DEFAULT_CONNECT_TIMEOUT", "KNOWN", "NodeOptions", "node_options"]
