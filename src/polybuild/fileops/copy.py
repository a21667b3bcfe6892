"""COPY and ADD of local sources with BuildKit's rules.

Rules, each checked against BuildKit (solver/llbsolver/file/backend.go, tonistiigi/fsutil copy,
frontend/dockerfile/dockerfile2llb/convert_copy.go):
- a source is cleaned against the source root (`../` cannot climb out, a leading `/` is
  dropped) and its symlinks are followed inside that root (FollowSymlinks); symlinks *inside*
  a copied directory are copied as symlinks;
- what .dockerignore leaves out does not exist, as the client never sends it: a source that
  names it, matches it or reaches it through a symlink is "not found" (fileops.view);
- wildcards (`*`, `?`, `[...]`, Go filepath.Match) match within the source; a wildcard that
  matches nothing copies nothing (AllowEmptyWildcard), but a missing non-wildcard path or a
  missing directory before the wildcard is an error;
- a directory source copies its contents (CopyDirContentsOnly) and is merged into what is
  there; a file onto an existing directory, or a directory onto a file, is an error;
- `dest` ending in `/` is a directory (created with its parents); otherwise a file source
  becomes `dest` unless `dest` is an existing directory, in which case it goes inside;
- created directories get 0755 and the --chown owner (MkdirAll); copied entries keep mode,
  times and xattrs; owners are the --chown owner, else 0:0 for the build context (the client
  resets them) or the source's for stages; --chmod replaces the permission bits (octal keeps
  set-id bits, as fsutil) or applies symbolic clauses; hard links within one source stay links.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from polybuild.dockerfile.ignore import IgnoreMatcher
from polybuild.errors import DockerfileError, RootfsPathError
from polybuild.fileops.archive import extract_archive, is_archive
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.mode import ChmodSpec, parse_chmod
from polybuild.fileops.owner import ResolvedOwner
from polybuild.fileops.sources import (
    ExpandOptions,
    expand_source,
    filtered,
    included,
    may_include_under,
)
from polybuild.fileops.tree import (
    DestRoot,
    Meta,
    copy_xattrs,
    remove_non_dir,
    set_meta,
    write_file_from,
)
from polybuild.fileops.view import SourceView
from polybuild.rootfs import clean_path, lstat_at

__all__ = ["CopyResult", "copy_files"]

_MULTI = "the destination must be a directory and end with a /"


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What a copy did: matched sources (relative to the source root), entries written, archives."""

    sources: tuple[str, ...]
    entries: int
    unpacked: tuple[str, ...] = ()


class _Copier:
    """One COPY/ADD: the options every entry needs, and the running counts."""

    def __init__(
        self,
        src_root: Path,
        dest: DestRoot,
        *,
        chmod: ChmodSpec | None,
        owner: ResolvedOwner | None,
        reset_owner: bool,
        exclude: IgnoreMatcher | None,
        ignore: IgnoreMatcher | None,
        instruction: str,
    ) -> None:
        self.src_root = src_root
        self.dest = dest
        self.chmod = chmod
        self.owner = owner
        self.reset_owner = reset_owner
        self.exclude = exclude
        self.ignore = ignore
        self.prefix = ""  # the current match's path in the source root, for `ignore`
        self.instruction = instruction
        self.entries = 0
        self.inodes: dict[tuple[int, int], tuple[int, str]] = {}

    def meta(self, st: os.stat_result) -> Meta:
        if self.owner is not None:
            uid, gid = self.owner.uid, self.owner.gid
        elif self.reset_owner:
            uid = gid = 0
        else:
            uid, gid = st.st_uid, st.st_gid
        mode = self.chmod.apply(st.st_mode) if self.chmod else st.st_mode & 0o7777
        return Meta(uid, gid, mode, st.st_atime_ns, st.st_mtime_ns)

    def copy_top(
        self, src: str, st: os.stat_result, dest_parts: list[str], name: str, include: str
    ) -> None:
        """fsutil prepareTargetDir + copy for one matched source at the resolved `dest_parts`."""
        self.close()  # BuildKit keeps hard links within one source, not across sources
        parent_parts, last = dest_parts[:-1], (dest_parts[-1] if dest_parts else "")
        parent = self.dest.mkdir_all(parent_parts)
        try:
            dst = lstat_at(parent, last) if last else os.stat(".", dir_fd=parent)
            if stat.S_ISDIR(st.st_mode):
                if dst is None or stat.S_ISDIR(dst.st_mode):
                    target = self.dest.mkdir_all(dest_parts)  # MkdirAll semantics when missing
                    try:
                        self.copy_children(src, "", lambda: target, include)
                    finally:
                        os.close(target)
                    # an existing (or just made) top directory only takes the source's times
                    os.utime(
                        last or ".",
                        ns=(st.st_atime_ns, st.st_mtime_ns),
                        dir_fd=parent,
                        follow_symlinks=False,
                    )
                    return
                raise FileOpError(
                    f"cannot copy to non-directory: /{'/'.join(dest_parts)}",
                    instruction=self.instruction,
                )
            if dst is not None and stat.S_ISDIR(dst.st_mode):
                inner = self.dest.mkdir_all(dest_parts)
                try:
                    self.copy_leaf(src, st, inner, name, f"/{'/'.join([*dest_parts, name])}")
                finally:
                    os.close(inner)
                return
            self.copy_leaf(src, st, parent, last, f"/{'/'.join(dest_parts)}")
        finally:
            os.close(parent)

    def copy_children(
        self, src_dir: str, rel: str, get_dir: Callable[[], int], include: str
    ) -> None:
        """Copy what is inside host directory `src_dir` into the directory `get_dir()` gives.

        `get_dir` may create that directory on first use: fsutil makes a directory that is
        itself excluded (or not yet matched by a --parents pattern) only once a child is copied.
        """
        with os.scandir(src_dir) as it:
            names = sorted(entry.name for entry in it)
        for name in names:
            child_rel = f"{rel}/{name}" if rel else name
            host = os.path.join(src_dir, name)
            st = os.lstat(host)
            excluded, descend = filtered(self.exclude, self.ignore, child_rel, self.prefix)
            matched = not include or included(include, child_rel)
            if not stat.S_ISDIR(st.st_mode):
                if matched and not excluded:
                    self.copy_leaf(host, st, get_dir(), name, child_rel)
                continue
            if matched and not excluded:
                self.copy_dir(host, st, child_rel, get_dir(), name, include)
                continue
            # Walk on only if a `!` exclusion or the --parents pattern may still want a child.
            if excluded and not descend:
                continue
            if not matched and not may_include_under(include, child_rel):
                continue
            lazy = _LazyDir(self, get_dir, name, host, st)
            try:
                self.copy_children(host, child_rel, lazy.fd, include)
            finally:
                lazy.finish()

    def copy_dir(
        self, host: str, st: os.stat_result, rel: str, parent: int, name: str, include: str
    ) -> None:
        fd = self.dest.mkdir_child(parent, name)
        self.entries += 1
        try:
            self.copy_children(host, rel, lambda: fd, include)
        finally:
            os.close(fd)
        # after the children, so creating them cannot disturb the directory's times
        set_meta(parent, name, self.meta(st), is_link=False)
        copy_xattrs(host, parent, name)

    def copy_leaf(self, host: str, st: os.stat_result, parent: int, name: str, what: str) -> None:
        """A file, symlink, fifo or device onto `name` in `parent`, replacing a non-directory."""
        remove_non_dir(parent, name, what)
        meta = self.meta(st)
        self.entries += 1
        mode = st.st_mode
        if stat.S_ISREG(mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self.inodes:
                link_dir, link_name = self.inodes[key]
                os.link(
                    link_name, name, src_dir_fd=link_dir, dst_dir_fd=parent, follow_symlinks=False
                )
                return
            src_fd = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            try:
                out = write_file_from(src_fd, parent, name)
            finally:
                os.close(src_fd)
            try:
                # chown clears set-id bits, so it comes first; times last
                os.fchown(out, meta.uid, meta.gid)
                os.fchmod(out, meta.mode)
                copy_xattrs(host, parent, name)
                os.utime(out, ns=(meta.atime_ns, meta.mtime_ns))
            finally:
                os.close(out)
            if st.st_nlink > 1:
                self.inodes[key] = (os.dup(parent), name)
            return
        if stat.S_ISLNK(mode):
            os.symlink(os.readlink(host), name, dir_fd=parent)
            set_meta(parent, name, meta, is_link=True)
            return
        os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=parent)
        set_meta(parent, name, meta, is_link=False)

    def close(self) -> None:
        for fd, _ in self.inodes.values():
            os.close(fd)
        self.inodes.clear()


class _LazyDir:
    """A destination directory made on first use, then given its source's metadata."""

    def __init__(
        self,
        copier: _Copier,
        get_parent: Callable[[], int],
        name: str,
        host: str,
        st: os.stat_result,
    ) -> None:
        self.copier, self.get_parent, self.name, self.host, self.st = (
            copier,
            get_parent,
            name,
            host,
            st,
        )
        self.parent = -1
        self.dir_fd: int | None = None

    def fd(self) -> int:
        if self.dir_fd is None:
            self.parent = self.get_parent()
            self.dir_fd = self.copier.dest.mkdir_child(self.parent, self.name)
            self.copier.entries += 1
        return self.dir_fd

    def finish(self) -> None:
        if self.dir_fd is None:
            return
        os.close(self.dir_fd)
        self.dir_fd = None
        set_meta(self.parent, self.name, self.copier.meta(self.st), is_link=False)
        copy_xattrs(self.host, self.parent, self.name)


def copy_files(
    src_root: Path,
    dest_root: Path,
    sources: Sequence[str],
    dest: str,
    *,
    chmod: str = "",
    chown: ResolvedOwner | None = None,
    parents: bool = False,
    exclude: Sequence[str] = (),
    follow_symlinks: bool = True,
    reset_owner: bool = False,
    source_date_epoch: int | None = None,
    is_add: bool = False,
    unpack: bool | None = None,
    allow_empty_wildcard: bool = True,
    allow_wildcards: bool = True,
    ignore: Sequence[str] = (),
    instruction: str = "",
) -> CopyResult:
    """Copy `sources` (paths in `src_root`) to `dest` (absolute, in `dest_root`) as COPY/ADD.

    `reset_owner` is for the build context, whose files the client sends as 0:0; stages keep
    their owners. `source_date_epoch` (seconds) becomes the mtime of the directories this
    copy creates (BuildKit leaves them at the current time). With `is_add`, a local tar
    archive (plain, gzip, bzip2, xz, zstd; found by content) is extracted into `dest`
    instead of copied, unless `unpack` is False. `ignore` holds .dockerignore patterns
    (relative to `src_root`) for a raw context directory: what they match does not exist
    for the copy. Everything is resolved inside the two roots
    as if chrooted: nothing outside `dest_root` is ever written.
    """
    spec = parse_chmod(chmod, instruction=instruction)
    kind = "ADD" if is_add else "COPY"
    dir_hint = dest.endswith("/") or dest in (".", "") or dest.endswith("/.")
    if len(sources) > 1 and not dir_hint:
        raise FileOpError(
            f"When using {kind} with more than one source file, {_MULTI}",
            instruction=instruction,
            hint=f"write the destination as {dest}/",
        )
    try:
        matcher = IgnoreMatcher(tuple(exclude)) if exclude else None
    except DockerfileError as exc:
        raise FileOpError(
            f"invalid --exclude pattern: {exc.message}", instruction=instruction
        ) from None
    view = SourceView(src_root, IgnoreMatcher(tuple(ignore)) if ignore else None)
    options = ExpandOptions(
        parents, matcher, follow_symlinks, allow_wildcards, allow_empty_wildcard
    )
    matches = [m for source in sources for m in expand_source(view, source, options, instruction)]
    attempt_unpack = is_add if unpack is None else unpack
    created_ns = source_date_epoch * 1_000_000_000 if source_date_epoch is not None else None
    with DestRoot(dest_root, owner=chown, created_mtime_ns=created_ns) as root:
        dest_parts = clean_path(dest)
        ensure = dest_parts if dir_hint else dest_parts[:-1]
        os.close(root.mkdir_all(ensure))
        try:
            resolved = root.resolve("/".join(dest_parts))
        except RootfsPathError as exc:
            raise FileOpError(str(exc), instruction=instruction) from None
        if len(matches) > 1 and not dir_hint and not _is_dir(dest_root, resolved):
            raise FileOpError(
                f"{len(matches)} files match; when copying several files {_MULTI}",
                instruction=instruction,
                hint=f"write the destination as {dest}/",
            )
        copier = _Copier(
            src_root,
            root,
            chmod=spec,
            owner=chown,
            reset_owner=reset_owner,
            exclude=matcher,
            ignore=view.ignore,
            instruction=instruction,
        )
        unpacked: list[str] = []
        try:
            for match in matches:
                host = str(view.host(match.resolved))
                st = os.lstat(host)
                if attempt_unpack and stat.S_ISREG(st.st_mode) and is_archive(host):
                    copier.entries += extract_archive(host, root, resolved, chown, instruction)
                    unpacked.append("/".join(match.parts))
                    continue
                name = match.parts[-1] if match.parts else ""
                copier.prefix = "/".join(match.resolved)
                copier.copy_top(host, st, resolved, name, match.include)
            root.finish()
        except OSError as exc:
            raise FileOpError(
                _os_message(exc, src_root, dest_root), instruction=instruction
            ) from exc
        finally:
            copier.close()
    return CopyResult(tuple("/".join(m.parts) for m in matches), copier.entries, tuple(unpacked))


def _is_dir(root: Path, parts: list[str]) -> bool:
    return os.path.isdir(root.joinpath(*parts)) and not os.path.islink(root.joinpath(*parts))


def _os_message(exc: OSError, *roots: Path) -> str:
    """An OSError as BuildKit words it, with host root prefixes trimmed from paths."""
    text = exc.strerror or str(exc)
    path = os.fsdecode(exc.filename) if exc.filename is not None else ""
    for root in roots:
        path = path.removeprefix(str(root))
    return f"{path}: {text}" if path else text
