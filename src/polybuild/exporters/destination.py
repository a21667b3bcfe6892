"""Output destinations that appear complete or not at all: temp file or directory, then rename."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import ImageError, UsageError


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")


def check_file_dest(dest: str, stdout: BinaryIO | None = None) -> None:
    """UsageError now, before building, for a file destination that cannot work."""
    if dest == "-":
        if stdout is not None and stdout.isatty():
            raise UsageError(
                "--output: refusing to write an archive to a terminal",
                hint="give dest=FILE or redirect the output",
            )
        return
    if Path(dest).is_dir():
        raise UsageError(f"--output: destination file {dest} is a directory")


def check_dir_dest(dest: str) -> None:
    """UsageError now, before building, for a directory destination that is a file."""
    path = Path(dest)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--output: destination directory {dest} is a file")


@contextlib.contextmanager
def open_file_dest(dest: str, stdout: BinaryIO) -> Iterator[BinaryIO]:
    """A stream for `dest` ("-" is stdout); a file is renamed into place only on success."""
    check_file_dest(dest, stdout)
    if dest == "-":
        yield stdout
        stdout.flush()
        return
    path = Path(dest)
    temp = _temp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temp.open("wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        temp.replace(path)
    except OSError as exc:
        raise ImageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            temp.unlink()


@contextlib.contextmanager
def staging_dir(dest: str) -> Iterator[Path]:
    """A fresh directory next to `dest` to fill; on success its entries move into `dest`.

    A new `dest` is the renamed staging directory itself; into an existing one each top-level
    entry is moved, replacing an entry of the same name (as buildx's local exporter writes
    into an existing directory). On error the staging directory is removed and `dest` is
    untouched.
    """
    check_dir_dest(dest)
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    temp.mkdir(mode=0o755)
    try:
        yield temp
        if not path.exists():
            temp.rename(path)
            return
        for entry in sorted(temp.iterdir()):
            target = path / entry.name
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            entry.rename(target)
    except OSError as exc:
        raise ImageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


__all__ = ["check_dir_dest", "check_file_dest", "open_file_dest", "staging_dir"]
