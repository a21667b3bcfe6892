"""Probe results kept between commands, as a BuildKit daemon keeps what it probed at start.

Running the probe programs costs ~10 process starts (one per architecture, several under
QEMU): about 0.1 s of every build. The results are kept in /run/polybuild (a tmpfs: gone at
reboot) under a fingerprint of everything they depend on: the boot, binfmt_misc's status and
every handler's registration text, and the file behind each interpreter a handler without
the F flag opens at each run. Anything changed, and the host is probed again. The file is
trusted only when it is root's and no one else can write it or its directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

from polybuild.binfmt.handlers import BINFMT_MISC

RUN_DIR = Path("/run/polybuild")
CACHE_FILE = "binfmt-probe.json"
_VERSION = 1


def fingerprint(root: Path = BINFMT_MISC) -> str:
    """A digest of what probe results depend on (empty when it cannot be read)."""
    h = hashlib.sha256()
    try:
        h.update(Path("/proc/sys/kernel/random/boot_id").read_bytes())
        entries = sorted(os.listdir(root)) if (root / "register").exists() else []
        for name in entries:
            if name == "register":
                continue
            text = (root / name).read_bytes()
            h.update(name.encode() + b"\0" + text + b"\0")
            if name != "status" and b"flags: " in text and b"F" not in _flags(text):
                h.update(_interpreter_stamp(text))
    except OSError:
        return ""
    return h.hexdigest()


def _flags(text: bytes) -> bytes:
    for line in text.splitlines():
        if line.startswith(b"flags: "):
            return line.removeprefix(b"flags: ")
    return b""


def _interpreter_stamp(text: bytes) -> bytes:
    for line in text.splitlines():
        if line.startswith(b"interpreter "):
            try:
                info = os.stat(line.removeprefix(b"interpreter "))
            except OSError:
                return b"missing"
            return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}".encode()
    return b""


def load(key: str, directory: Path = RUN_DIR) -> list[dict[str, Any]] | None:
    """The stored results for `key`, if a trustworthy file holds them."""
    if not key or os.geteuid() != 0:
        return None
    path = directory / CACHE_FILE
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not (_private(os.fstat(fd)) and _private(os.stat(directory))):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("version") != _VERSION or data.get("key") != key:
        return None
    results = data.get("results")
    return results if isinstance(results, list) else None


def store(key: str, results: list[dict[str, Any]], directory: Path = RUN_DIR) -> None:
    """Keep `results` under `key` (best effort: a failure only means probing next time)."""
    if not key or os.geteuid() != 0:
        return
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(os.stat(directory)):
            return
        tmp = directory / f".{CACHE_FILE}.{os.getpid()}"
        payload = json.dumps({"version": _VERSION, "key": key, "results": results})
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(payload)
        os.replace(tmp, directory / CACHE_FILE)
    except OSError:
        return


def _private(info: os.stat_result) -> bool:
    return info.st_uid == 0 and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def remembered(
    probe: Callable[[], list[dict[str, Any]]], directory: Path = RUN_DIR
) -> list[dict[str, Any]]:
    """`probe()`'s results, from the kept file when nothing they depend on changed."""
    key = fingerprint()
    found = load(key, directory)
    if found is not None:
        return found
    results = probe()
    store(key, results, directory)
    return results


__all__ = ["fingerprint", "load", "remembered", "store"]
