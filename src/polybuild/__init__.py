"""polybuild: build container images for many CPU platforms at once, without a daemon.

>>> import polybuild
>>> result = polybuild.build(".", platforms=["linux/amd64", "linux/arm64"],
...                          tags=["example:latest"], load=True)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from polybuild import _codecache, _httpx_cli

_codecache.install()  # before any dataclass below is made: their compiled methods are kept
_httpx_cli.install()  # httpx without its command-line client (0.15 s of imports)

from polybuild._version import __version__  # noqa: E402
from polybuild.errors import PolybuildError  # noqa: E402
from polybuild.platforms import Platform  # noqa: E402

if TYPE_CHECKING:
    from polybuild.imagebuild.request import BuildResult


def build(context: Any, **options: Any) -> BuildResult:
    """Build `context` for several platforms; see `polybuild.imagebuild.api.build`."""
    from polybuild.imagebuild.api import build as _build

    return _build(context, **options)


__all__ = ["Platform", "PolybuildError", "__version__", "build"]
