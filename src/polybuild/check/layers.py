"""Unpacked layers against their blobs (check --deep): each layer unpacked afresh and compared,
path by path, with the layer store's copy, which builds and runs take as whole."""

from __future__ import annotations

import functools
import hashlib
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO, cast

from polybuild.check.problems import Problem
from polybuild.errors import PolybuildError
from polybuild.image.digest import Digest
from polybuild.layers import UnpackMode, unpack_layer
from polybuild.runtime import Runtime

Entry = tuple[object, ...]


def tree_summary(root: Path) -> dict[str, Entry]:
    """Each path under `root`: type, owner, permission bits and content (hash, link target,
    device number). Times are left out: a directory's mtime changes as entries are added."""
    summary: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            rel = os.path.relpath(path, root)
            owner = (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode))
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256()
                with open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        digest.update(chunk)
                summary[rel] = ("file", *owner, digest.hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                summary[rel] = ("symlink", st.st_uid, st.st_gid, os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                summary[rel] = ("dir", *owner)
            else:
                summary[rel] = ("special", *owner, stat.S_IFMT(st.st_mode), st.st_rdev)
    return summary


def _difference(want: Mapping[str, Entry], have: Mapping[str, Entry]) -> str:
    def few(paths: list[str]) -> str:
        shown = ", ".join(sorted(paths)[:3])
        return shown + (f" (+{len(paths) - 3} more)" if len(paths) > 3 else "")

    parts = []
    missing = [p for p in want if p not in have]
    extra = [p for p in have if p not in want]
    changed = [p for p in want if p in have and want[p] != have[p]]
    if missing:
        parts.append(f"missing {few(missing)}")
    if extra:
        parts.append(f"extra {few(extra)}")
    if changed:
        parts.append(f"changed {few(changed)}")
    return "; ".join(parts)


def verify_unpacked(runtime: Runtime, layers: Mapping[str, Digest]) -> list[Problem]:
    """Compare each unpacked layer present (by diff-id hex) with a fresh unpack of its blob."""
    problems = []
    scratch_parent = runtime.root / "tmp"
    for hex_id, blob in sorted(layers.items()):
        unpacked = runtime.layers.root / hex_id
        if not unpacked.is_dir():
            continue  # unpacked when next needed
        scratch_parent.mkdir(parents=True, exist_ok=True)
        # step-<pid>-: a killed check's scratch directory is removed by the next command
        scratch = Path(tempfile.mkdtemp(prefix=f"step-{os.getpid()}-check-", dir=scratch_parent))
        try:
            with runtime.store.content.open(blob) as stream:
                unpack_layer(
                    cast(BinaryIO, stream),
                    scratch,
                    mode=UnpackMode.OVERLAY,
                    trusted=True,
                    expected_diff_id=f"sha256:{hex_id}",
                )
            difference = _difference(tree_summary(scratch), tree_summary(unpacked))
        except PolybuildError as exc:
            difference = ""
            problems.append(Problem("layer", str(blob), f"cannot be unpacked: {exc}"))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        if difference:
            problems.append(
                Problem(
                    "layer",
                    str(unpacked),
                    f"differs from its blob {blob}: {difference}",
                    repair=functools.partial(_remove_unpacked, runtime, unpacked),
                )
            )
    return problems


def _remove_unpacked(runtime: Runtime, path: Path) -> str:
    # Renamed away first: never a half-removed layer under its own name.
    doomed = runtime.root / "tmp" / f"step-{os.getpid()}-check-{secrets.token_hex(4)}"
    path.rename(doomed)
    shutil.rmtree(doomed)
    return "removed (it is unpacked again when needed)"
