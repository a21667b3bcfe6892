"""Deterministic layer tars from a directory, an overlayfs upper directory or a list of changes."""

from __future__ import annotations

import enum
import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import LayerWriteError
from polybuild.tarstream import header as tarheader

__all__ = [
    "OPAQUE_WHITEOUT",
    "WHITEOUT_PREFIX",
    "Change",
    "ChangeKind",
    "LayerWriteError",
    "compute_changes",
    "write_changes_tar",
    "write_directory_tar",
    "write_upper_tar",
]

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
_CHUNK = 1 << 20

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")
# Private overlayfs bookkeeping and host SELinux labels describe the build host, not the
# image; keeping them would make layers differ between hosts and confuse later overlays.
_DROPPED_XATTR_PREFIXES = ("trusted.overlay.", "user.overlay.", "security.selinux")
# These make an upper directory depend on its lower layers (renamed dirs, metadata-only
# copy-ups); a tar of the upper alone would be wrong, so we refuse instead of guessing.
_UNSUPPORTED_OVERLAY_XATTRS = (
    "trusted.overlay.redirect",
    "trusted.overlay.metacopy",
    "user.overlay.redirect",
    "user.overlay.metacopy",
)


class ChangeKind(enum.StrEnum):
    """What happened to a path between the lower tree and the new tree."""

    ADD = "add"
    MODIFY = "modify"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Change:
    """One changed path, relative and slash-separated (`etc/passwd`)."""

    kind: ChangeKind
    path: str


def _sort_key(name: str) -> bytes:
    # Byte order, not str order: names that are not valid UTF-8 must still sort one way.
    return os.fsencode(name)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LayerWriteError(f"cannot stat {path}: {exc.strerror}") from exc


def _walk(root: str, rel: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """Depth-first (relative name, absolute path, lstat) below `root`, parents first, sorted."""
    directory = os.path.join(root, rel) if rel else root
    try:
        with os.scandir(directory) as it:
            entries = sorted(it, key=lambda e: _sort_key(e.name))
    except OSError as exc:
        raise LayerWriteError(f"cannot list {directory}: {exc.strerror}") from exc
    for entry in entries:
        name = _join(rel, entry.name)
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as exc:
            raise LayerWriteError(f"cannot stat {entry.path}: {exc.strerror}") from exc
        yield name, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(root, name)


def _read_xattrs(path: str) -> dict[str, bytes]:
    """All extended attributes of `path` (not following symlinks), by name."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise LayerWriteError(f"cannot list xattrs of {path}: {exc.strerror}") from exc
    values: dict[str, bytes] = {}
    for name in sorted(names):
        try:
            values[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in (errno.ENODATA, errno.ENOTSUP, errno.EPERM):
                continue
            raise LayerWriteError(f"cannot read xattr {name} of {path}: {exc.strerror}") from exc
    return values


def _content_xattrs(xattrs: dict[str, bytes]) -> dict[str, bytes]:
    return {k: v for k, v in xattrs.items() if not k.startswith(_DROPPED_XATTR_PREFIXES)}


def _is_whiteout_device(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _TarEmitter:
    """Writes entries with fixed metadata rules into one PAX tar stream."""

    def __init__(self, out: tarheader.ByteSink, source_date_epoch: int | None) -> None:
        self._out = out
        self._epoch = source_date_epoch
        self._links: dict[tuple[int, int], str] = {}

    def close(self) -> None:
        tarheader.end_of_archive(self._out)

    def _clamp(self, mtime: float) -> int:
        seconds = int(mtime // 1)
        return seconds if self._epoch is None else min(seconds, self._epoch)

    def entry(self, name: str, path: str, st: os.stat_result, xattrs: dict[str, bytes]) -> None:
        """Add `path` (already lstat'ed) under `name`; sockets are skipped."""
        mode = st.st_mode
        if stat.S_ISSOCK(mode):
            return
        if os.path.basename(name).startswith(WHITEOUT_PREFIX):
            raise LayerWriteError(
                f"{path}: names starting with {WHITEOUT_PREFIX!r} cannot be stored in a layer",
                hint="an OCI layer would read it as a whiteout; rename the file",
            )
        key = (st.st_dev, st.st_ino)
        linkname, size, devmajor, devminor = "", 0, 0, 0
        xattr_items = tuple(sorted(_content_xattrs(xattrs).items()))
        first = name
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            first = self._links.setdefault(key, name)
        if first != name:
            # A later name of an inode already in the layer; it shares data and xattrs.
            kind, linkname, xattr_items = tarheader.LNKTYPE, first, ()
        elif stat.S_ISREG(mode):
            kind, size = tarheader.REGTYPE, st.st_size
        elif stat.S_ISDIR(mode):
            kind = tarheader.DIRTYPE
        elif stat.S_ISLNK(mode):
            kind, linkname = tarheader.SYMTYPE, os.readlink(path)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            kind = tarheader.CHRTYPE if stat.S_ISCHR(mode) else tarheader.BLKTYPE
            devmajor, devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        elif stat.S_ISFIFO(mode):
            kind = tarheader.FIFOTYPE
        else:
            raise LayerWriteError(f"{path}: unsupported file type {stat.S_IFMT(mode):o}")
        entry = tarheader.TarEntry(
            name=name,
            type=kind,
            mode=stat.S_IMODE(mode),
            uid=st.st_uid,
            gid=st.st_gid,
            size=size,
            mtime=self._clamp(st.st_mtime),
            linkname=linkname,
            devmajor=devmajor,
            devminor=devminor,
            xattrs=xattr_items,
        )
        if kind == tarheader.REGTYPE:
            self._write_file(entry, path)
        else:
            self._write(entry)

    def marker(self, name: str) -> None:
        """A whiteout or opaque marker: an empty file with metadata fixed for determinism."""
        self._write(tarheader.TarEntry(name=name, type=tarheader.REGTYPE, mode=0o600))

    def _write(self, entry: tarheader.TarEntry) -> None:
        self._out.write(tarheader.encode_header(entry))

    def _write_file(self, entry: tarheader.TarEntry, path: str) -> None:
        try:
            with open(path, "rb", buffering=0) as data:
                self._write(entry)
                remaining = entry.size
                while remaining:
                    chunk = data.read(min(remaining, _CHUNK))
                    if not chunk:
                        raise LayerWriteError(f"{path} shrank while the layer was being written")
                    self._out.write(chunk)
                    remaining -= len(chunk)
        except OSError as exc:
            raise LayerWriteError(f"cannot read {path}: {exc.strerror}") from exc
        self._out.write(tarheader.padding(entry.size))


def write_directory_tar(
    root: Path, out: tarheader.ByteSink, *, source_date_epoch: int | None = None
) -> None:
    """Write every entry below `root` (not root itself) as a deterministic tar into `out`."""
    emitter = _TarEmitter(out, source_date_epoch)
    for name, path, st in _walk(str(root)):
        emitter.entry(name, path, st, _read_xattrs(path))
    emitter.close()


def write_upper_tar(
    upper: Path, out: tarheader.ByteSink, *, source_date_epoch: int | None = None
) -> None:
    """Write an overlayfs upper directory as an OCI layer: whiteouts become `.wh.` entries.

    Char devices 0/0 become `.wh.NAME`; a directory whose opaque xattr is `y` is followed
    directly by `DIR/.wh..wh..opq`, before its children, so it hides only lower layers.
    """
    emitter = _TarEmitter(out, source_date_epoch)
    for name, path, st in _walk(str(upper)):
        parent, _, base = name.rpartition("/")
        if _is_whiteout_device(st):
            # Whiteouts may share one inode (overlayfs links them), so never as hardlinks.
            emitter.marker(_join(parent, WHITEOUT_PREFIX + base))
            continue
        xattrs = _read_xattrs(path)
        bad = [key for key in _UNSUPPORTED_OVERLAY_XATTRS if key in xattrs]
        if bad:
            raise LayerWriteError(
                f"{path}: overlay attribute {bad[0]} needs the lower layers to interpret",
                hint="mount overlayfs with redirect_dir=off,metacopy=off for build snapshots",
            )
        emitter.entry(name, path, st, xattrs)
        if stat.S_ISDIR(st.st_mode) and any(xattrs.get(k) == b"y" for k in _OPAQUE_XATTRS):
            emitter.marker(_join(name, OPAQUE_WHITEOUT))
    emitter.close()


def _same_entry(lower: str, lst: os.stat_result, new: str, nst: os.stat_result) -> bool:
    """Whether two entries (not both directories) hold the same content and metadata."""
    if stat.S_IFMT(lst.st_mode) != stat.S_IFMT(nst.st_mode):
        return False
    if (lst.st_mode, lst.st_uid, lst.st_gid) != (nst.st_mode, nst.st_uid, nst.st_gid):
        return False
    if _content_xattrs(_read_xattrs(lower)) != _content_xattrs(_read_xattrs(new)):
        return False
    if stat.S_ISLNK(nst.st_mode):
        return os.readlink(lower) == os.readlink(new)
    if stat.S_ISCHR(nst.st_mode) or stat.S_ISBLK(nst.st_mode):
        return lst.st_rdev == nst.st_rdev
    if not stat.S_ISREG(nst.st_mode):
        return True
    if lst.st_size != nst.st_size or lst.st_mtime_ns != nst.st_mtime_ns:
        return False
    # Whole-second mtimes may come from a copy that truncated them, so equal metadata
    # proves nothing: compare the bytes (the rule containerd's diff uses too).
    if nst.st_mtime_ns % 1_000_000_000 == 0:
        return _same_bytes(lower, new)
    return True


def _same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            chunk_a, chunk_b = fa.read(1 << 20), fb.read(1 << 20)
            if chunk_a != chunk_b:
                return False
            if not chunk_a:
                return True


def _diff_dir(lower: str, new: str, rel: str) -> list[Change]:
    try:
        names = set(os.listdir(os.path.join(lower, rel) if rel else lower))
        names |= set(os.listdir(os.path.join(new, rel) if rel else new))
    except OSError as exc:
        raise LayerWriteError(f"cannot list {rel or '/'}: {exc.strerror}") from exc
    changes: list[Change] = []
    for base in sorted(names, key=_sort_key):
        name = _join(rel, base)
        lpath, npath = os.path.join(lower, name), os.path.join(new, name)
        lst, nst = _lstat(lpath), _lstat(npath)
        if nst is None:
            changes.append(Change(ChangeKind.DELETE, name))
            continue
        new_is_dir = stat.S_ISDIR(nst.st_mode)
        if lst is None or (new_is_dir and not stat.S_ISDIR(lst.st_mode)):
            kind = ChangeKind.ADD if lst is None else ChangeKind.MODIFY
            changes.append(Change(kind, name))
            if new_is_dir:
                changes.extend(Change(ChangeKind.ADD, sub) for sub, _, _ in _walk(new, name))
            continue
        if new_is_dir:
            below = _diff_dir(lower, new, name)
            same_meta = (lst.st_mode, lst.st_uid, lst.st_gid) == (
                nst.st_mode,
                nst.st_uid,
                nst.st_gid,
            ) and _content_xattrs(_read_xattrs(lpath)) == _content_xattrs(_read_xattrs(npath))
            # A changed child brings its parent along, as an overlay upper dir would.
            if below or not same_meta:
                changes.append(Change(ChangeKind.MODIFY, name))
                changes.extend(below)
        elif not _same_entry(lpath, lst, npath, nst):
            changes.append(Change(ChangeKind.MODIFY, name))
    return changes


def compute_changes(lower: Path, new: Path) -> list[Change]:
    """Changes turning tree `lower` into tree `new`, parents before children, sorted.

    For the copy-based snapshot fallback: `new` started as a copy of `lower`. A deleted
    directory is one DELETE (its children are not listed).
    """
    return _diff_dir(str(lower), str(new), "")


def write_changes_tar(
    new: Path,
    changes: Iterable[Change],
    out: tarheader.ByteSink,
    *,
    source_date_epoch: int | None = None,
) -> None:
    """Write `changes` (from compute_changes) as a layer, reading content from tree `new`."""
    emitter = _TarEmitter(out, source_date_epoch)
    for change in changes:
        if change.kind is ChangeKind.DELETE:
            parent, _, base = change.path.rpartition("/")
            emitter.marker(_join(parent, WHITEOUT_PREFIX + base))
            continue
        path = os.path.join(new, change.path)
        st = _lstat(path)
        if st is None:
            raise LayerWriteError(f"{path} vanished while the layer was being written")
        emitter.entry(change.path, path, st, _read_xattrs(path))
    emitter.close()
