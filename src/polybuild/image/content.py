"""The content store: blobs by digest, written atomically and verified on every write and read.

Layout under the root::

    blobs/<algorithm>/<hex>   committed blobs, read-only, only ever renamed into place
    ingest/<name>.partial     blobs being written; each is flock()ed by its live writer

A writer streams into a temp file in `ingest/` (same filesystem, so the final rename is
atomic), hashes as it goes, and on commit checks size and digest, fsyncs the file, renames
it into `blobs/` and fsyncs the directory. A killed writer leaves only an unlocked
`.partial` file, which readers never look at and `gc_temp()` removes.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import re
import secrets
import stat
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from polybuild.errors import BlobNotFoundError, ContentError, DigestMismatchError
from polybuild.image.commit import CommitOnExit
from polybuild.image.digest import ALGORITHMS, CANONICAL, Digest, Digester, InvalidDigestError
from polybuild.image.lease import remove_unless_locked
from polybuild.syscalls import pid_alive

_CHUNK = 1 << 20
_WINDOW = 32 << 20  # a multiple of mmap.ALLOCATIONGRANULARITY
_ALONGSIDE = 4 << 20  # blobs at least this big are hashed beside their copy into a file
_PARTIAL = ".partial"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _os_error(action: str, exc: OSError, where: Path | None = None) -> ContentError:
    if where is not None and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # The one failure users can act on: say where the space ran out.
        return ContentError(
            f"no space left on the file system of {where}: cannot {action}",
            hint="free space there; polybuild prune removes the build cache and unused "
            "layers of the data root",
        )
    return ContentError(f"content store: cannot {action}: {exc.strerror or exc}")


def write_file_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` so that readers see the old or the new file, never a mix."""
    _remove_dead_temps(path)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise _os_error(f"write {path}", exc, path.parent) from exc


def _remove_dead_temps(path: Path) -> None:
    """Remove the temp files of `path` (`.NAME.PID-HEX.tmp`) that killed processes left."""
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)-[0-9a-f]{{8}}\.tmp$")
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match is not None and not pid_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


class BlobWriter(CommitOnExit):
    """Streams one blob into the store; verified and made visible only by `commit()`."""

    def __init__(self, store: ContentStore, expected: Digest | None, size: int | None) -> None:
        self._store = store
        self.expected = expected
        self.expected_size = size
        self._digester = Digester(expected.algorithm if expected else CANONICAL)
        store.ingest_dir.mkdir(parents=True, exist_ok=True)
        name = f"{os.getpid()}-{secrets.token_hex(8)}{_PARTIAL}"
        self.temp_path = store.ingest_dir / name
        try:
            fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise _os_error("create a temporary file", exc, self._store.root) from exc
        # The lock tells gc_temp() in other processes that this file is still being written.
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._file = os.fdopen(fd, "wb")
        self.digest: Digest | None = None
        self._done = False

    @property
    def written(self) -> int:
        return self._digester.size

    @property
    def digest_algorithm(self) -> str:
        return self._digester.algorithm

    def running_digest(self) -> Digest:
        """The digest of what was written so far (the blob's, once everything is)."""
        return self._digester.digest()

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._done:
            raise ContentError("content store: write after commit or abort")
        if self.expected_size is not None and self.written + len(data) > self.expected_size:
            self.abort()
            raise DigestMismatchError(
                f"blob {self.expected or ''} is larger than its expected size "
                f"{self.expected_size}; refused"
            )
        self._digester.update(data)
        try:
            self._file.write(data)
        except OSError as exc:
            self.abort()
            raise _os_error("write a blob", exc, self._store.root) from exc
        return len(data)

    def flush(self) -> None:
        """Nothing to do: data reaches the disk (and fsync) in commit(); streams call this."""

    def commit(self) -> Digest:
        """Verify size and digest, then make the blob visible atomically; returns its digest."""
        if self._done:
            if self.digest is None:
                raise ContentError("content store: commit after abort")
            return self.digest
        actual = self._digester.digest()
        if self.expected_size is not None and self.written != self.expected_size:
            self.abort()
            raise DigestMismatchError(
                f"blob {self.expected or actual} has {self.written} bytes, "
                f"expected {self.expected_size}; refused"
            )
        if self.expected is not None and actual != self.expected:
            self.abort()
            raise DigestMismatchError(
                f"blob content has digest {actual}, expected {self.expected}; refused"
            )
        target = self._store.path(actual)
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            os.fchmod(self._file.fileno(), self._store.blob_mode)
            target.parent.mkdir(parents=True, exist_ok=True)
            # The bytes are verified, so they replace whatever is there: a blob corrupted on
            # disk is repaired by writing it again (rename is atomic; readers see old or new).
            # The new file's mtime also tells a concurrent collection it was just written.
            os.rename(self.temp_path, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            self.abort()
            raise _os_error(f"commit blob {actual}", exc, self._store.root) from exc
        finally:
            self._file.close()
        self._done = True
        self.digest = actual
        return actual

    def abort(self) -> None:
        """Throw the partial blob away; nothing becomes visible."""
        if self._done:
            return
        self._done = True
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            self.temp_path.unlink()

    def _commit(self) -> Digest:
        return self.commit()

    def _abandon(self) -> None:
        self.abort()


class BlobReader:
    """A read-only stream of one blob that raises DigestMismatchError once it has read it all
    and the bytes do not hash to the digest."""

    def __init__(self, digest: Digest, path: Path) -> None:
        self.digest = digest
        try:
            self._file = path.open("rb")
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found in the content store") from None
        except OSError as exc:
            raise _os_error(f"open blob {digest}", exc) from exc
        self.size = os.fstat(self._file.fileno()).st_size
        self._digester = Digester(digest.algorithm)
        self._checked = False

    def read(self, n: int = -1) -> bytes:
        data = self._file.read(n)
        self._digester.update(data)
        if not self._checked and (not data or self._digester.size >= self.size):
            self._check()
        return data

    def copy_into(self, out: BinaryIO) -> int:
        """Write the whole blob to `out`, verified; the bytes written.

        Into a pipe, socket or buffer nothing is written before the blob is verified (a
        corrupt blob writes nothing). Into a regular file, which the callers write only to
        discard on error (open_file_dest's temporary, renamed on success), the kernel copies
        (copy_file_range) while another thread hashes the blob through a memory map, and a
        corrupt blob raises once both are done: about half the time of one after the other.
        No byte of the blob passes through Python's buffers on either path.
        """
        if self._digester.size:
            raise ValueError("copy_into needs an unread blob")
        fd = self._file.fileno()
        try:
            target = out.fileno()
        except (AttributeError, OSError, ValueError):  # io.BytesIO and friends
            target = -1
        if target >= 0 and self.size >= _ALONGSIDE and stat.S_ISREG(os.fstat(target).st_mode):
            out.flush()
            with ThreadPoolExecutor(1, "blob-hash") as pool:
                hashed = pool.submit(self._hash_mapped, fd)
                try:
                    _copy_fd(fd, target, self.size)
                finally:
                    hashed.result()
            self._check()
            return self.size
        self._hash_mapped(fd)
        self._check()
        if target < 0:
            self._file.seek(0)
            while chunk := self._file.read(_CHUNK):
                out.write(chunk)
            return self.size
        out.flush()
        _copy_fd(fd, target, self.size)
        return self.size

    def _hash_mapped(self, fd: int) -> None:
        # Mapped a window at a time, so the pages hashed leave this process's RSS as it goes.
        for start in range(0, self.size, _WINDOW):
            length = min(_WINDOW, self.size - start)
            with mmap.mmap(fd, length, prot=mmap.PROT_READ, offset=start) as mapped:
                view = memoryview(mapped)
                try:
                    self._digester.update(view)
                finally:
                    view.release()

    def _check(self) -> None:
        self._checked = True
        actual = self._digester.digest()
        if actual != self.digest or self._digester.size != self.size:
            raise DigestMismatchError(
                f"blob {self.digest} in the content store is corrupt (its bytes hash to {actual})",
                hint="remove the images that use it (polybuild rmi) and pull or load them again",
            )

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[bytes]:
        return iter(lambda: self.read(_CHUNK), b"")


def _copy_fd(source: int, target: int, size: int) -> None:
    """`size` bytes of file `source` from offset 0 to `target` at its offset, in the kernel
    when it can (copy_file_range between files, sendfile into a pipe), else through a buffer."""
    offset = 0
    ways = ["range", "sendfile", "read"]
    while offset < size:
        count = min(size - offset, 1 << 30)
        try:
            if ways[0] == "range":
                n = os.copy_file_range(source, target, count, offset)
            elif ways[0] == "sendfile":
                n = os.sendfile(target, source, offset, count)
            else:
                n = os.write(target, os.pread(source, min(count, _CHUNK), offset))
        except OSError as exc:
            unsupported = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF)
            if len(ways) > 1 and exc.errno in unsupported:
                ways.pop(0)
                continue
            raise
        if n == 0:
            raise OSError(errno.EIO, f"blob ended after {offset} of {size} bytes")
        offset += n


class ContentStore:
    """Blobs by digest under `root`; see the module docstring for the guarantees."""

    def __init__(
        self,
        root: Path,
        *,
        ingest_dir: Path | None = None,
        clean_temp: bool = True,
        private: bool = False,
    ) -> None:
        self.root = Path(root)
        # The data root's store is private (0400); an OCI layout a user asked for is 0444.
        self.blob_mode = 0o400 if private else 0o444
        self.blobs_dir = self.root / "blobs"
        # Must be on the same filesystem as blobs/ so that commit is a rename.
        self.ingest_dir = Path(ingest_dir) if ingest_dir else self.root / "ingest"
        if clean_temp:
            self.gc_temp()

    def path(self, digest: Digest) -> Path:
        """Where the blob lives (whether or not it exists)."""
        return self.blobs_dir / digest.algorithm / digest.hex

    def exists(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        try:
            return self.path(digest).stat().st_size
        except FileNotFoundError:
            raise BlobNotFoundError(f"blob {digest} not found in the content store") from None

    def open(self, digest: Digest) -> BlobReader:
        """A verified stream of the blob; BlobNotFoundError if it is absent."""
        return BlobReader(digest, self.path(digest))

    def get(self, digest: Digest) -> bytes:
        """The blob's bytes, verified against its digest."""
        with self.open(digest) as reader:
            return reader.read()

    def verify(self, digest: Digest) -> None:
        """Re-hash the blob; DigestMismatchError if it is corrupt."""
        with self.open(digest) as reader:
            for _ in reader:
                pass

    def writer(self, expected: Digest | None = None, size: int | None = None) -> BlobWriter:
        """A streaming writer; use it as a context manager (commit on success)."""
        return BlobWriter(self, expected, size)

    def put(self, data: bytes, expected: Digest | None = None) -> Digest:
        """Store `data` (verified against `expected` when given) and return its digest."""
        if expected is not None and self.exists(expected):
            if Digest.of(data, expected.algorithm) != expected:
                raise DigestMismatchError(f"blob content does not match {expected}; refused")
            self.touch(expected)
            return expected
        with self.writer(expected, len(data)) as writer:
            writer.write(data)
        assert writer.digest is not None
        return writer.digest

    def touch(self, digest: Digest) -> bool:
        """Mark an existing blob as just written (see ImageStore.lease); False if absent."""
        try:
            os.utime(self.path(digest))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _os_error(f"touch blob {digest}", exc) from exc
        return True

    def delete(self, digest: Digest) -> bool:
        """Remove a blob; False if it was not there."""
        try:
            self.path(digest).unlink()
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise _os_error(f"delete blob {digest}", exc) from exc
        return True

    def __iter__(self) -> Iterator[Digest]:
        """Every committed blob's digest (names that are not digests are skipped)."""
        for algorithm in ALGORITHMS:
            directory = self.blobs_dir / algorithm
            if not directory.is_dir():
                continue
            for entry in os.scandir(directory):
                try:
                    digest = Digest(algorithm, entry.name)
                except InvalidDigestError:
                    continue
                yield digest

    def gc_temp(self) -> int:
        """Remove partial blobs that no live writer holds; returns how many were removed."""
        removed = 0
        try:
            entries = list(os.scandir(self.ingest_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            if not entry.name.endswith(_PARTIAL):
                continue
            if remove_unless_locked(entry.path):  # kept while a live writer holds it
                removed += 1
        return removed
