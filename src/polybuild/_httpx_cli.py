"""Keep httpx's command-line client out of polybuild's start-up.

httpx's package imports its own CLI (`httpx._main`, which loads rich's console, pygments and
click's extras: about 0.15 s) whenever those are installed, and they are polybuild's
dependencies too. polybuild never runs that CLI, so before httpx is first imported a small
module takes its place; calling it says so. Every other part of httpx is untouched.
"""

from __future__ import annotations

import sys
import types


def _unavailable() -> None:
    raise SystemExit("httpx's command-line client is not loaded inside polybuild")


def install() -> None:
    """Stand in for httpx._main unless httpx (or its CLI) is already loaded."""
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stub = types.ModuleType("httpx._main", __doc__)
    stub.main = _unavailable  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stub


__all__ = ["install"]
