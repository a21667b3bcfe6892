"""QEMU's slow-down factors measured on this machine (`polybuild binfmt --bench`), stored in
the data root as `insight/qemu-factors.json` and read back by the emulation advisor.

The file is ours but lives where a build's root processes live, so it is read as untrusted:
opened without following a link, at most 64 KiB, every platform name and factor checked (a
finite float in (0, 1000]); anything else and the whole file counts as never measured. It is
written atomically (a temp file beside it, fsync, rename over the name, so a link there is
replaced, never followed) with mode 0644.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import stat
import time
from collections.abc import Mapping
from pathlib import Path

from polybuild.dataroot import make_private
from polybuild.errors import PolybuildError

FACTORS_PATH = Path("insight") / "qemu-factors.json"  # relative to the data root
FORMAT_VERSION = 1
MAX_FACTOR = 1000.0  # no emulator is that slow; a larger value is a hostile or broken file
MAX_SECONDS = 86400.0
_MAX_BYTES = 64 * 1024
_MAX_PLATFORMS = 64
_PART = r"[a-z0-9][a-z0-9_.-]{0,31}"
_PLATFORM = re.compile(rf"{_PART}/{_PART}(/{_PART})?")
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


def _valid(values: object, limit: float) -> dict[str, float] | None:
    """`values` as platform -> number when every entry is a platform name and a finite float
    in (0, limit], else None."""
    if not isinstance(values, dict) or len(values) > _MAX_PLATFORMS:
        return None
    checked: dict[str, float] = {}
    for key, value in values.items():
        if not isinstance(key, str) or not _PLATFORM.fullmatch(key):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        try:
            number = float(value)
        except OverflowError:  # an integer of 400 digits
            return None
        if not (math.isfinite(number) and 0.0 < number <= limit):
            return None
        checked[key] = number
    return checked


def _read(root: Path) -> bytes | None:
    """The file's bytes, None when it is missing, not a regular file, behind a link or too big."""
    try:
        dir_fd = os.open(root / FACTORS_PATH.parent, _DIR_FLAGS)
    except OSError:
        return None
    try:
        fd = os.open(FACTORS_PATH.name, _FILE_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None
    finally:
        os.close(dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > _MAX_BYTES:
            return None
        data = os.read(fd, _MAX_BYTES + 1)
        return None if len(data) > _MAX_BYTES else data
    except OSError:
        return None
    finally:
        os.close(fd)


def load_factors(root: Path) -> dict[str, float]:
    """Platform (`linux/arm64`) -> how many times slower than native it ran under QEMU, as
    last measured in data root `root`; {} when never measured or the file is not valid."""
    data = _read(root)
    if data is None:
        return {}
    try:
        document = json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    return _valid(document.get("factors"), MAX_FACTOR) or {}


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number")  # NaN, Infinity: not JSON


def _encode(
    factors: Mapping[str, float],
    *,
    workload: str,
    native: str,
    measured: float,
    seconds: Mapping[str, float] | None,
) -> bytes:
    checked = _valid(dict(factors), MAX_FACTOR)
    if not checked:
        raise ValueError(f"not a set of slow-down factors: {dict(factors)!r}")
    document: dict[str, object] = {
        "version": FORMAT_VERSION,
        "native": native,
        "workload": workload,
        "measured": measured,
        "measuredAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(measured)),
        "factors": dict(sorted(checked.items())),
    }
    if seconds is not None:
        timed = _valid(dict(seconds), MAX_SECONDS)
        if timed is None:
            raise ValueError(f"not a set of measured seconds: {dict(seconds)!r}")
        document["seconds"] = dict(sorted(timed.items()))
    return (json.dumps(document, indent=2) + "\n").encode()


def save_factors(
    root: Path,
    factors: Mapping[str, float],
    *,
    workload: str,
    native: str,
    measured: float,
    seconds: Mapping[str, float] | None = None,
) -> Path:
    """Store `factors` (platform -> slow-down, the native platform 1.0) in data root `root`
    with what was measured: the native platform, the workload's description, when (`measured`,
    seconds since the epoch) and optionally each platform's median seconds. Returns the path.
    ValueError for factors load_factors would refuse; PolybuildError when it cannot be written.
    """
    data = _encode(factors, workload=workload, native=native, measured=measured, seconds=seconds)
    path = root / FACTORS_PATH
    try:
        root = make_private(root) if not root.is_dir() else root
        root_fd = os.open(root, _DIR_FLAGS)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(FACTORS_PATH.parent.name, 0o755, dir_fd=root_fd)
            dir_fd = os.open(FACTORS_PATH.parent.name, _DIR_FLAGS, dir_fd=root_fd)
        finally:
            os.close(root_fd)
        try:
            _replace(dir_fd, FACTORS_PATH.name, data)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise PolybuildError(
            f"cannot store QEMU's slow-down factors in {path}: {exc.strerror or exc}"
        ) from exc
    return path


def _replace(dir_fd: int, name: str, data: bytes) -> None:
    """Write `name` in the directory `dir_fd` atomically: a new 0644 file renamed over it."""
    temp = f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temp, flags, 0o644, dir_fd=dir_fd)
    try:
        try:
            os.fchmod(fd, 0o644)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        os.fsync(dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
        raise


__all__ = ["FACTORS_PATH", "load_factors", "save_factors"]
