"""Compiled dataclass methods kept between runs, as Python keeps modules' bytecode.

On Python 3.11 and 3.12 `@dataclass` writes each generated method (`__init__`, `__repr__`,
`__eq__`, `__hash__`, the frozen `__setattr__`...) as source text and compiles it while the
class is made. polybuild defines about 170 dataclasses on a build's path, and compiling their
~1,000 methods was about 0.2 s of every command's start (40% of a warm build's CPU). The
compiled code depends only on that text, so it is kept in `__pycache__` beside the package's
bytecode (or under `sys.pycache_prefix`), keyed by the text and the interpreter's bytecode
magic, and written back when a run compiled something new, unless bytecode writing is off.

A code object from that file is run as bytecode is: the file is read only when it is owned
by this user (or root) and no one else can write it, as the `.pyc` files beside it. Whatever
goes wrong (no file, a corrupt one, a read-only install), dataclasses compile as usual.
"""

from __future__ import annotations

import atexit
import builtins
import dataclasses
import importlib.util
import marshal
import os
import stat
import sys
from pathlib import Path
from types import CodeType
from typing import Any

_HEADER = b"polybuild-dataclass-code-2\0" + importlib.util.MAGIC_NUMBER
_LIMIT = 16 << 20
_codes: dict[str, CodeType] = {}  # compiled or unmarshalled in this process
_kept: dict[str, bytes] = {}  # source -> marshalled code, from the file: unmarshalled on use
_added: list[str] = []


def cache_path() -> Path:
    """Where the compiled methods are kept: the package's __pycache__ (or its mirror under
    sys.pycache_prefix)."""
    package = Path(__file__).resolve().parent
    name = f"dataclass-code.{sys.implementation.cache_tag}.bin"
    if sys.pycache_prefix:
        return Path(sys.pycache_prefix + str(package)) / name
    return package / "__pycache__" / name


def _exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    if isinstance(source, str):
        code = _codes.get(source)
        if code is None:
            code = _unmarshal(_kept.get(source))
            if code is None:
                code = compile(source, "<string>", "exec")
                _added.append(source)
            _codes[source] = code
        source = code
    builtins.exec(source, globals, locals)


def _unmarshal(raw: bytes | None) -> CodeType | None:
    if raw is None:
        return None
    try:
        code = marshal.loads(raw)
    except (EOFError, ValueError, TypeError):
        return None
    return code if isinstance(code, CodeType) else None


def _load(path: Path) -> dict[str, bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        info = os.fstat(fd)
        if info.st_uid not in (0, os.geteuid()) or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return {}
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(_LIMIT + 1)
    except OSError:
        return {}
    finally:
        os.close(fd)
    if len(raw) > _LIMIT or not raw.startswith(_HEADER):
        return {}
    try:
        found = marshal.loads(raw[len(_HEADER) :])
    except (EOFError, ValueError, TypeError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {k: v for k, v in found.items() if isinstance(k, str) and isinstance(v, bytes)}


def _save() -> None:
    if not _added or sys.dont_write_bytecode:
        return
    path = cache_path()
    merged = {**_load(path), **{source: marshal.dumps(_codes[source]) for source in _added}}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(_HEADER + marshal.dumps(merged))
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)


def install() -> None:
    """Serve dataclasses' compiles from the kept code (once per process)."""
    if getattr(dataclasses, "exec", None) is _exec:
        return
    if sys.version_info >= (3, 13) or not hasattr(dataclasses, "_create_fn"):
        return  # 3.13 compiles a class's methods in one go; nothing to gain there
    _kept.update(_load(cache_path()))
    dataclasses.exec = _exec  # type: ignore[attr-defined]  # the module's own global name
    atexit.register(_save)


__all__ = ["cache_path", "install"]
