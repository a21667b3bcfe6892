"""A COPY/ADD source root as BuildKit's daemon holds it: .dockerignore'd entries do not exist.

BuildKit's client (fsutil) sends the build context filtered and its symlinks as symlinks, so
on the daemon an ignored file is simply absent: a link to it dangles, and a source path that
follows one (`COPY alias`, `COPY linkdir/key`) is "not found". `SourceView` gives every
source lookup that view of a raw directory, resolving symlinks inside the root one component
at a time (polybuild.rootfs) and treating each ignored component as missing, however it was
reached.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from polybuild.dockerfile.ignore import IgnoreMatcher
from polybuild.errors import RootfsPathError
from polybuild.fileops.errors import FileOpError
from polybuild.rootfs import resolve_parts

__all__ = ["SourceView"]


class SourceView:
    """Directory `root` without what `ignore` (.dockerignore patterns) leaves out.

    Paths are `/`-separated and relative to the root. An ignored directory still exists
    when it holds a re-included (`!pattern`) path, as fsutil sends such a directory (with
    only the re-included entries below it).
    """

    __slots__ = ("_holds", "ignore", "root")

    def __init__(self, root: Path, ignore: IgnoreMatcher | None = None) -> None:
        self.root = root
        self.ignore = ignore
        self._holds: dict[str, bool] = {}  # ignored directory -> holds a re-included path

    def host(self, parts: tuple[str, ...]) -> Path:
        """The host path of resolved components `parts` (as `lookup` returns them)."""
        return self.root.joinpath(*parts)

    def lookup(
        self, path: str, *, follow_last: bool = True, shown: str = "", instruction: str = ""
    ) -> tuple[str, ...]:
        """The components of `path` with its symlinks resolved inside the view.

        `..` stops at the root and absolute link targets start there, so no lookup leaves
        it. Raises FileOpError `"<shown>": not found` when a component is missing or
        ignored (a link into an ignored path dangles), naming `shown` or else `/path`.
        """
        what = shown or "/" + "/".join(p for p in path.split("/") if p)

        def check(parts: list[str], st: os.stat_result | None) -> None:
            if st is None or not self._visible("/".join(parts), st):
                raise FileOpError(f'"{what}": not found', instruction=instruction)

        try:
            root_fd = os.open(self.root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:  # no root: nothing is in the view
            raise FileOpError(f'"{what}": not found', instruction=instruction) from None
        try:
            return tuple(resolve_parts(root_fd, path, follow_last=follow_last, on_entry=check))
        except RootfsPathError:
            raise FileOpError(
                f'"/{path.lstrip("/")}": too many levels of symbolic links',
                instruction=instruction,
            ) from None
        finally:
            os.close(root_fd)

    def exists(self, rel: str) -> bool:
        """Whether `rel` (no symlinks before its last component, none followed) is in the view."""
        parts = rel.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = parts[:depth]
            try:
                st = os.lstat(self.root.joinpath(*prefix))
            except (FileNotFoundError, NotADirectoryError):
                return False
            if not self._visible("/".join(prefix), st):
                return False
        return True

    def _visible(self, rel: str, st: os.stat_result) -> bool:
        """Whether existing entry `rel`, whose parents are visible, is in the view."""
        if self.ignore is None or not self.ignore.excluded(rel):
            return True
        return stat.S_ISDIR(st.st_mode) and self._holds_included(rel)

    def _holds_included(self, rel: str) -> bool:
        """Whether ignored directory `rel` holds a path a `!` pattern brings back."""
        cached = self._holds.get(rel)
        if cached is not None:
            return cached
        assert self.ignore is not None
        found = False
        if self.ignore.may_match_under(rel):
            with os.scandir(self.root / rel) as it:
                entries = list(it)
            for entry in entries:
                child = f"{rel}/{entry.name}"
                if not self.ignore.excluded(child) or (
                    entry.is_dir(follow_symlinks=False) and self._holds_included(child)
                ):
                    found = True
                    break
        self._holds[rel] = found
        return found
