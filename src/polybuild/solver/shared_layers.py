"""One layer for every platform when a COPY's result cannot depend on the platform.

`COPY . /ctx` onto each platform's base writes the same files into a path none of the bases
has: the layer is byte for byte the same for every target (BuildKit gets there with `COPY
--link`, which never looks at the base). The solver then copies, tars and compresses it once:
the first platform to reach the step makes the layer, the others take it.

A COPY/ADD qualifies when nothing it writes can depend on its base:
- its destination does not exist in the base, and every existing directory above it is a
  real directory (not a link), whose metadata is part of the key (overlayfs copies those
  directories into the layer);
- `--chown` is empty or numeric (a name is looked up in the base's /etc/passwd);
- its source is the same for every platform: the build context or a named directory (read
  the same whatever the platform), or a result whose key is the same (a `$BUILDPLATFORM`
  stage, a URL).
Anything else runs per platform as before.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path, PurePosixPath
from typing import Any

from polybuild.graph import ops
from polybuild.graph.ops import canonical_json
from polybuild.image.layer import Layer
from polybuild.solver.ops.base import key_of
from polybuild.solver.results import Result

_NUMERIC_CHOWN = re.compile(r"^\d+(:\d+)?$")


def share_key(op: ops.Op, inputs: Sequence[Result], extra: Any, layer_format: Any) -> str | None:
    """The platform-free part of a shareable COPY's key (None: the step is not shareable);
    `with_base` completes it once the base is at hand."""
    if not isinstance(op, ops.Copy) or not op.dest.startswith("/"):
        return None
    if op.chown and not _NUMERIC_CHOWN.match(op.chown):
        return None
    definition = {k: v for k, v in op.definition().items() if k != "platform"}
    source = op.source
    if isinstance(source, ops.LocalSource):
        # the directory reads the same for every platform; its files are in `extra`
        source_key = key_of(source.kind, {**source.definition(), "platform": None}, [])
    elif len(inputs) > 1:
        source_key = inputs[1].key
    else:
        source_key = ""
    return key_of("shared." + op.kind, definition, [source_key], [extra, layer_format])


def with_base(key: str, rootfs: Path, dest: str, lowers: Sequence[Path] = ()) -> str | None:
    """`key` completed with what the base holds above `dest` (None: the base decides what
    the step writes: `dest` exists there, or a directory above it is a link or a file, or
    a layer below once had the path the step creates: deleted paths leave whiteouts in
    `lowers`, and a directory made over one is opaque in the new layer)."""
    parts = PurePosixPath(dest).parts[1:]
    if not parts or ".." in parts:
        return None
    seen: list[Any] = []
    path = rootfs
    for depth, name in enumerate(parts):
        path = path / name
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            created = parts[: depth + 1]  # made by the step from here down
            if any(os.path.lexists(lower.joinpath(*created)) for lower in lowers):
                return None
            break
        except OSError:
            return None
        if depth == len(parts) - 1 or not stat.S_ISDIR(info.st_mode):
            return None  # the destination exists, or its parent is not a plain directory
        seen.append([name, info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, _xattrs(path)])
    digest = hashlib.sha256(canonical_json([key, seen])).hexdigest()
    return "sha256:" + digest


def _xattrs(path: Path) -> list[list[str]]:
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
        return [[n, os.getxattr(path, n, follow_symlinks=False).hex()] for n in names]
    except OSError:
        return [["?", ""]]


class SharedLayers:
    """Layers being made for one shareable step, by key: the first caller makes it, the
    others wait for it (a maker that failed leaves the others to run the step themselves)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._made: dict[str, Future[Layer]] = {}

    def claim(self, key: str) -> tuple[bool, Future[Layer]]:
        """(True, future to fulfil) for the maker; (False, future to wait on) for others."""
        with self._lock:
            found = self._made.get(key)
            if found is not None:
                return False, found
            future: Future[Layer] = Future()
            self._made[key] = future
            return True, future

    def forget(self, key: str) -> None:
        with self._lock:
            self._made.pop(key, None)


__all__ = ["SharedLayers", "share_key", "with_base"]
