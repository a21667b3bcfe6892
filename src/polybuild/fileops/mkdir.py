"""WORKDIR: make a directory and its parents inside a root, owned by the stage's USER."""

from __future__ import annotations

import os
from pathlib import Path

from polybuild.fileops.errors import FileOpError
from polybuild.fileops.owner import ResolvedOwner
from polybuild.fileops.tree import DestRoot
from polybuild.rootfs import clean_path

__all__ = ["make_dir"]


def make_dir(
    dest_root: Path,
    path: str,
    *,
    owner: ResolvedOwner | None = None,
    mode: int = 0o755,
    source_date_epoch: int | None = None,
    instruction: str = "",
) -> None:
    """BuildKit's Mkdir with parents (dockerfile2llb dispatchWorkdir, file backend mkdir).

    Symlinks on the way resolve inside `dest_root`; every directory this creates (parents
    too) gets `mode` and `owner` (the stage's USER resolved like --chown, see
    `resolve_owner`); directories that exist are left alone. `source_date_epoch` becomes the
    created directories' mtime (BuildKit uses the current time).
    """
    mtime_ns = source_date_epoch * 1_000_000_000 if source_date_epoch is not None else None
    try:
        with DestRoot(
            dest_root, owner=owner, created_mtime_ns=mtime_ns, created_mode=mode & 0o777
        ) as root:
            os.close(root.mkdir_all(clean_path(path)))
            root.finish()
    except FileOpError as exc:
        raise FileOpError(exc.reason, instruction=instruction) from None
    except OSError as exc:
        raise FileOpError(f"mkdir {path}: {exc.strerror}", instruction=instruction) from exc
