"""polybuild: build container images for many CPU platforms at once, without a daemon."""

from __future__ import annotations

__version__ = "0.1.0"

from polybuild.errors import PolybuildError
from polybuild.platforms import Platform

__all__ = ["Platform", "PolybuildError", "__version__"]
