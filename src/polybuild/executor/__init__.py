"""Run processes in real containers: OCI runtime spec, runc, users, and QEMU emulation."""

from __future__ import annotations

from polybuild.executor.process import DEFAULT_PATH, ExitStatus, Mount, Process
from polybuild.executor.runc import RuncExecutor

__all__ = ["DEFAULT_PATH", "ExitStatus", "Mount", "Process", "RuncExecutor"]
