"""Where polybuild keeps its state: one data root for the content store, images and caches."""

from __future__ import annotations

import os
from pathlib import Path

SYSTEM_ROOT = Path("/var/lib/polybuild")


def data_root() -> Path:
    """The data root: $POLYBUILD_ROOT, else /var/lib/polybuild for root, else the XDG data dir.

    The directory is not created here; the stores that live in it create what they use.
    """
    override = os.environ.get("POLYBUILD_ROOT")
    if override:
        return Path(override).absolute()
    if os.geteuid() == 0:
        return SYSTEM_ROOT
    import platformdirs  # lazy: only needed for unprivileged users

    return Path(platformdirs.user_data_dir("polybuild", appauthor=False))
