"""Reading the build's Dockerfile (`-f PATH`, `-f -`, or CONTEXT/Dockerfile) with the errors
buildx gives, for every node kind: this machine's frontend, ssh nodes and BuildKit daemons."""

from __future__ import annotations

from pathlib import Path

from polybuild.errors import UsageError
from polybuild.imagebuild.request import BuildRequest


def read_dockerfile(request: BuildRequest) -> tuple[bytes, str, Path]:
    """The Dockerfile's bytes, the name errors use, and its path (for Dockerfile.dockerignore)."""
    if not request.context.is_dir():
        raise UsageError(
            f"unable to prepare context: path {str(request.context)!r} not found",
            hint="give the build context directory as the last argument",
        )
    if request.dockerfile_text is not None:
        return request.dockerfile_text, "Dockerfile", request.context / "Dockerfile"
    path = request.dockerfile or request.context / "Dockerfile"
    try:
        return path.read_bytes(), path.name, path
    except OSError as exc:
        raise UsageError(
            f"failed to read dockerfile: open {path}: {exc.strerror}", hint="give its path with -f"
        ) from exc


__all__ = ["read_dockerfile"]
