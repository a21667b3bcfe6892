"""Runs a parsed `polybuild build` request and prints what buildx prints at the end."""

from __future__ import annotations

import sys

from polybuild.image.mediatypes import is_index
from polybuild.imagebuild.request import BuildRequest


def run_build(request: BuildRequest, *, quiet: bool = False) -> int:
    """Build; with -q print only the image ID, as buildx: the config digest of a
    one-platform image, else the index digest (what --iidfile gets)."""
    from polybuild.imagebuild.api import run_request

    result = run_request(request)
    if quiet and request.call == "build" and result.index is not None:
        one = len(result.images) == 1 and not is_index(result.index.media_type)
        image_id = result.images[0].config.digest if one else result.index.digest
        sys.stdout.write(f"{image_id}\n")
    return 0
