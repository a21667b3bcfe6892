"""`polybuild build --call targets`: list the Dockerfile's stages, build nothing."""

from __future__ import annotations

import sys
from typing import TextIO

from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.targets import list_targets, render_json, render_text
from polybuild.imagebuild.dockerfile_file import read_dockerfile
from polybuild.imagebuild.request import BuildRequest


def run_targets(request: BuildRequest, *, json_format: bool, out: TextIO | None = None) -> int:
    """Print the targets (buildx's text, or the frontend's JSON); the exit status."""
    data, name, _ = read_dockerfile(request)
    targets = list_targets(parse(data, filename=name))
    text = render_json(targets, data) + "\n" if json_format else render_text(targets)
    (out or sys.stdout).write(text)
    return 0


__all__ = ["run_targets"]
