"""Runs a parsed `polybuild build` request and prints what buildx prints at the end."""

from __future__ import annotations

import sys

from polybuild.imagebuild.request import BuildRequest


def run_build(request: BuildRequest, *, quiet: bool = False) -> int:
    """Build; with -q print only the image digest (as docker build -q)."""
    from polybuild.imagebuild.api import run_request

    result = run_request(request)
    if quiet and result.index is not None:
        sys.stdout.write(f"{result.index.digest}\n")
    return 0
