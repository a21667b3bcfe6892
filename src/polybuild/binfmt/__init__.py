"""QEMU user emulation through binfmt_misc: probing, installing and removing handlers."""

from __future__ import annotations

from polybuild.binfmt.handlers import EMULATORS, BinfmtMisc, Emulator, Handler, find_interpreter
from polybuild.binfmt.installer import Outcome, install, status, uninstall
from polybuild.binfmt.probe import ProbeResult, ProbeStatus, probe_all, runnable_platforms

__all__ = [
    "EMULATORS",
    "BinfmtMisc",
    "Emulator",
    "Handler",
    "Outcome",
    "ProbeResult",
    "ProbeStatus",
    "find_interpreter",
    "install",
    "probe_all",
    "runnable_platforms",
    "status",
    "uninstall",
]
