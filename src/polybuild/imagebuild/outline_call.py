"""`polybuild build --call outline`: the target's build arguments, secrets and ssh sockets,
build nothing. Computed here for every node kind (BuildKit daemon nodes included: buildx
asks the daemon's Dockerfile frontend, whose answer this is), with this machine's platform
as the frontend's default build and target platform, as a daemon uses its own."""

from __future__ import annotations

import sys
from typing import TextIO

from polybuild.dockerfile.convert import default_args
from polybuild.dockerfile.outline import build_outline
from polybuild.dockerfile.outline_render import render_json, render_text
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.stages import from_parse_result
from polybuild.imagebuild.dockerfile_file import read_dockerfile
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import default_platform


def run_outline(request: BuildRequest, *, json_format: bool, out: TextIO | None = None) -> int:
    """Print the outline (buildx's text, or the frontend's JSON); the exit status."""
    data, name, _ = read_dockerfile(request)
    parsed = parse(data, filename=name)
    dockerfile = from_parse_result(parsed)
    here = default_platform()
    target = request.target or dockerfile.stages[-1].name or "default"
    defaults = default_args(here, here, target)
    defaults.update({k: v for k, v in request.build_args.items() if k in defaults})
    outline = build_outline(
        parsed,
        dockerfile,
        data,
        target=request.target,
        build_args=request.build_args,
        default_args=defaults,
    )
    text = render_json(outline) + "\n" if json_format else render_text(outline)
    (out or sys.stdout).write(text)
    return 0


__all__ = ["run_outline"]
