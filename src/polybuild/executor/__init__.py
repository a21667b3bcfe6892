"""Run processes in real containers: OCI runtime spec, runc, users, and QEMU emulation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polybuild.executor.process import DEFAULT_PATH, ExitStatus, Mount, Process

if TYPE_CHECKING:
    from polybuild.executor.runc import RuncExecutor


def __getattr__(name: str) -> Any:
    # runc's module (and binfmt's, and emulation's) load when a container is to run: a build
    # whose every step is cached never needs them.
    if name == "RuncExecutor":
        from polybuild.executor.runc import RuncExecutor

        return RuncExecutor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DEFAULT_PATH", "ExitStatus", "Mount", "Process", "RuncExecutor"]
