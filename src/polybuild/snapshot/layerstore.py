"""Unpacked layers kept once per diff-id, ready to be overlayfs lower directories."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from filelock import FileLock

from polybuild.layers import UnpackMode, unpack_layer
from polybuild.syscalls import pid_alive


class LayerStore:
    """`root/<hex of diff-id>/` holds one layer unpacked in overlay form (whiteouts as 0/0)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, diff_id: str) -> Path:
        algorithm, _, hex_digest = diff_id.partition(":")
        if algorithm != "sha256" or len(hex_digest) != 64:
            raise ValueError(f"not a sha256 diff-id: {diff_id!r}")
        return self.root / hex_digest

    def has(self, diff_id: str) -> bool:
        return self.path(diff_id).is_dir()

    def ensure(
        self, diff_id: str, open_blob: Callable[[], BinaryIO], *, trusted: bool = True
    ) -> Path:
        """The unpacked directory for `diff_id`, unpacking the blob first if needed.

        Unpacking goes to a temporary directory that is renamed into place only after the
        diff-id checked out, so a killed process never leaves a half-unpacked layer.
        """
        target = self.path(diff_id)
        if target.is_dir():
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if target.is_dir():
                return target
            tmp = self.root / f".tmp-{os.getpid()}-{secrets.token_hex(4)}"
            tmp.mkdir()
            try:
                with open_blob() as stream:
                    unpack_layer(
                        stream,
                        tmp,
                        mode=UnpackMode.OVERLAY,
                        trusted=trusted,
                        expected_diff_id=diff_id,
                    )
                tmp.rename(target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return target

    def adopt(self, diff_id: str, upper: Path) -> bool:
        """Keep a committed overlayfs upper directory as the unpacked form of its layer.

        The upper directory already is that layer in overlay form (whiteouts as 0/0 devices,
        opaque directories marked), so the next step on top of it needs no unpacking. The
        kernel's own bookkeeping xattrs (origin, impure, uuid) describe the old mount and are
        removed. False when the layer is already there or the rename cannot be done.
        """
        target = self.path(diff_id)
        if target.is_dir():
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock"):
            if target.is_dir():
                return False
            _strip_overlay_state(upper)
            try:
                upper.rename(target)
            except OSError:
                return False  # another file system: the layer will be unpacked when needed
        return True

    def cleanup_stale(self) -> None:
        """Remove temporary directories of unpacks that were killed."""
        if not self.root.exists():
            return
        for entry in self.root.glob(".tmp-*"):
            pid = entry.name.split("-")[1]
            if pid.isdigit() and not pid_alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)


_KEPT_XATTRS = frozenset({"trusted.overlay.opaque"})


def _strip_overlay_state(root: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (".", *dirnames, *filenames):
            path = os.path.join(dirpath, name)
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                continue
            for attr in names:
                if attr.startswith("trusted.overlay.") and attr not in _KEPT_XATTRS:
                    os.removexattr(path, attr, follow_symlinks=False)
