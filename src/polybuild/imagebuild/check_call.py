"""`polybuild build --call check` (`--check`): lint the Dockerfile, build nothing, and print
what buildx prints; the exit status is the frontend's (1 when anything was found)."""

from __future__ import annotations

import sys
from typing import TextIO

from polybuild.dockerfile.ignore import load_patterns
from polybuild.dockerfile.lint import (
    LintResults,
    lint_dockerfile,
    render_check,
    render_error,
    to_json,
)
from polybuild.errors import PolybuildError
from polybuild.imagebuild.dockerfile_file import read_dockerfile
from polybuild.imagebuild.request import BuildRequest
from polybuild.progress.writer import ProgressWriter


def lint_request(request: BuildRequest, *, all_stages: bool) -> LintResults:
    """The lint results of the request's Dockerfile, its .dockerignore and build args."""
    data, name, path = read_dockerfile(request)
    patterns = load_patterns(request.context, path)
    platform = request.platforms[0] if request.platforms else None
    return lint_dockerfile(
        data,
        filename=name,
        build_args=request.build_args,
        target=request.target,
        platform=platform,
        ignore_patterns=patterns,
        all_stages=all_stages,
    )


def run_check(request: BuildRequest, *, json_format: bool, out: TextIO | None = None) -> int:
    """Print the check as buildx does on stdout; a build error in the file is raised as
    buildx reports it (the message and its excerpt)."""
    stdout = out or sys.stdout
    results = lint_request(request, all_stages=not request.target)
    if json_format:
        stdout.write(to_json(results) + "\n")
    else:
        stdout.write(render_check(results))
    if results.error is not None:
        if not json_format and results.warnings:
            stdout.write("\n")
        raise PolybuildError(render_error(results).rstrip("\n"))
    return 1 if results.warnings else 0


def warn_build(request: BuildRequest, progress: ProgressWriter) -> None:
    """A build's lint: each warning of the stages it builds goes to the progress (printed
    at the end, as buildx lists BuildKit's); with `# check=error=true` a warning fails the
    build before anything runs, in BuildKit's words. A file that cannot be parsed is left
    to the conversion, which reports it."""
    results = lint_request(request, all_stages=False)
    for warning in results.warnings:
        progress.warn(warning.short(), detail=(warning.rule.description,), url=warning.rule.url)
    failure = results.failure()
    if failure is not None:
        raise PolybuildError(failure)  # buildx exits 1 for it, as for any failed solve
