"""Building images: Dockerfile + context -> one image per platform -> an index and outputs."""

from __future__ import annotations

from polybuild.imagebuild.request import BuildRequest, BuildResult

__all__ = ["BuildRequest", "BuildResult"]
