"""What a node tells a client about itself: version, platforms (its own probe), data root."""

from __future__ import annotations

import os
from pathlib import Path

from polybuild._version import __version__
from polybuild.binfmt.probe import ProbeStatus, cached_probe
from polybuild.dataroot import data_root
from polybuild.platforms import Platform, format_platform, host_platform
from polybuild.remote.messages import PROTOCOL_VERSION, NodeInfo


def probed_platforms() -> tuple[tuple[Platform, ...], tuple[Platform, ...]]:
    """(native, emulated) platforms of this machine in the probe's order, which is
    `runnable_platforms`'s; the host's own platform is native even when its probe failed."""
    native: list[Platform] = []
    emulated: list[Platform] = []
    for probe in cached_probe():
        into = {ProbeStatus.NATIVE: native, ProbeStatus.EMULATED: emulated}.get(probe.status)
        if into is not None:
            into.extend(p for p in probe.platforms if p not in native and p not in emulated)
    if host_platform() not in native:
        native.insert(0, host_platform())
    return tuple(native), tuple(p for p in emulated if p not in native)


def data_root_problem(root: Path) -> str:
    """Why polybuild could not keep its state in `root` ("" when it can); creates nothing."""
    existing = root
    while not existing.exists():
        if existing.parent == existing:
            return "no existing parent directory"
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    if not os.access(existing, os.R_OK | os.W_OK | os.X_OK):
        return f"{existing} is not writable by uid {os.geteuid()}"
    return ""


def node_info(request_id: int, *, protocol: int = PROTOCOL_VERSION) -> NodeInfo:
    """This machine's answer to an Info request (runs the platform probe: call in a thread)."""
    native, emulated = probed_platforms()
    root = data_root()
    problem = data_root_problem(root)
    return NodeInfo(
        id=request_id,
        polybuild=__version__,
        protocol=protocol,
        native=tuple(format_platform(p) for p in native),
        emulated=tuple(format_platform(p) for p in emulated),
        data_root=str(root),
        data_root_ok=not problem,
        data_root_problem=problem,
        root=os.geteuid() == 0,
    )
