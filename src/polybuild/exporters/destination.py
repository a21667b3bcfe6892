"""Output destinations that appear complete or not at all: temp file or directory, then rename."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import ImageError, UsageError
from polybuild.syscalls import pid_alive


def _temp_name(path: Path) -> Path:
    path = path.absolute()  # `.` and `/` have no name of their own to put beside
    name = path.name or "root"
    _remove_dead_temps(path.parent, name)
    return path.parent / f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def _remove_dead_temps(parent: Path, name: str) -> None:
    """Remove the temp files and directories a killed polybuild left beside this output."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)-[0-9a-f]{{8}}\.tmp$")
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


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
    """A fresh directory next to `dest` to fill; on success its content merges into `dest`.

    A new `dest` is the renamed staging directory itself. Into an existing one the content
    is merged as BuildKit's local exporter does: directories are merged recursively, files
    of the same name are replaced (each by a rename), and everything else already in `dest`
    stays. On error the staging directory is removed and `dest` is untouched.
    """
    check_dir_dest(dest)
    path = Path(dest).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_name(path)
    temp.mkdir(mode=0o755)
    try:
        yield temp
        if not path.exists():
            temp.rename(path)
            return
        _merge(temp, path)
    except OSError as exc:
        raise ImageError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    finally:
        if temp.exists():
            shutil.rmtree(temp, ignore_errors=True)


def _merge(source: Path, target: Path) -> None:
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if destination.is_dir() and not destination.is_symlink():
                _merge(entry, destination)
                shutil.copystat(entry, destination, follow_symlinks=False)
                continue
            if destination.exists() or destination.is_symlink():
                destination.unlink()  # a file (or link) where the image has a directory
        elif destination.is_dir() and not destination.is_symlink():
            shutil.rmtree(destination)  # a directory where the image has a file
        entry.rename(destination)


__all__ = ["check_dir_dest", "check_file_dest", "open_file_dest", "staging_dir"]
