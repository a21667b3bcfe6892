"""OCI image layouts as tar archives: written deterministically, read without extracting.

Reading never writes to the filesystem outside the content store: each `blobs/<alg>/<hex>`
member is streamed into the store through a verifying writer, so a member whose bytes do
not match its name is refused, a blob cut short is never committed, and no path in the
archive can escape anywhere. The archive (plain, gzip, bzip2, xz or zstd) is read with the
hardened tar reader (tarstream/reader.py): headers of one entry may read at most
1 MiB, members are forgotten once read, unread data is read through, and a corrupt header
after the first entry is an error rather than the end of the archive. Every failure is an
ImageError naming the archive.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import BinaryIO

from polybuild.errors import DigestMismatchError, ImageError
from polybuild.image.content import BlobReader, ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest, Digester, InvalidDigestError
from polybuild.image.layout import (
    INDEX_FILE,
    LAYOUT_FILE,
    LAYOUT_FILE_BYTES,
    check_layout_file,
    layout_index,
)
from polybuild.image.manifest import Index, Stored, parse_index
from polybuild.image.walk import reachable, require_complete
from polybuild.tarstream import reader as tarreader
from polybuild.tarstream.decompress import decompressed

_MAX_METADATA = 16 << 20
_CHUNK = 1 << 20


def _info(name: str, *, size: int = 0, directory: bool = False) -> tarfile.TarInfo:
    # Fixed metadata so the same images always give the same archive bytes.
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info


def write_tar(
    fileobj: BinaryIO, source: ContentStore, entries: Sequence[Descriptor]
) -> Stored[Index]:
    """Write an OCI layout tar of the images `entries` point at, all platforms included.

    Entries are written as given into index.json (annotate them with names first); blobs
    are streamed from `source`, verified as they are read, in digest order.
    """
    found = reachable(source, entries)
    require_complete(found, "image")
    index = layout_index(entries)
    archive = _TarOut(fileobj)
    try:
        archive.add(_info(LAYOUT_FILE, size=len(LAYOUT_FILE_BYTES)), LAYOUT_FILE_BYTES)
        archive.add(_info(INDEX_FILE, size=index.size), index.raw)
        archive.add(_info("blobs/", directory=True))
        for algorithm in sorted({d.algorithm for d in found.present}):
            archive.add(_info(f"blobs/{algorithm}/", directory=True))
        for digest in sorted(found.present):
            with source.open(digest) as reader:
                if reader.size != found.present[digest].size:
                    raise ImageError(
                        f"blob {digest} has {reader.size} bytes in the content store, "
                        f"but its descriptor says {found.present[digest].size}"
                    )
                info = _info(f"blobs/{digest.algorithm}/{digest.hex}", size=reader.size)
                archive.add_blob(info, reader)
        archive.close()
    except OSError as exc:
        raise ImageError(f"cannot write the OCI layout archive: {exc}") from exc
    return index


class _TarOut:
    """A tar stream as tarfile writes one (`w|`, PAX headers, records of 20 blocks), whose
    blobs go from the content store to the output in the kernel (BlobReader.copy_into)."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self.offset = 0

    def _write(self, data: bytes) -> None:
        self.out.write(data)
        self.offset += len(data)

    def _pad(self) -> None:
        remainder = self.offset % tarfile.BLOCKSIZE
        if remainder:
            self._write(tarfile.NUL * (tarfile.BLOCKSIZE - remainder))

    def add(self, info: tarfile.TarInfo, data: bytes = b"") -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        if data:
            self._write(data)
            self._pad()

    def add_blob(self, info: tarfile.TarInfo, reader: BlobReader) -> None:
        self._write(info.tobuf(tarfile.PAX_FORMAT, tarfile.ENCODING, "surrogateescape"))
        self.offset += reader.copy_into(self.out)
        self._pad()

    def close(self) -> None:
        self._write(tarfile.NUL * (tarfile.BLOCKSIZE * 2))
        remainder = self.offset % tarfile.RECORDSIZE
        if remainder:
            self._write(tarfile.NUL * (tarfile.RECORDSIZE - remainder))
        self.out.flush()


def _archive_name(fileobj: BinaryIO) -> str:
    """How messages name the archive: its path when it has one (stdin is "<stdin>")."""
    name = getattr(fileobj, "name", None)
    if isinstance(name, str | bytes) and name:
        return f"archive {os.fsdecode(name)}"
    return "the OCI layout archive"


def _member_path(member: tarfile.TarInfo, archive: str) -> PurePosixPath:
    path = PurePosixPath(member.name)
    parts = [p for p in path.parts if p not in (".", "")]
    if path.is_absolute() or ".." in parts:
        raise ImageError(f"{archive} has an unsafe path {member.name!r}; refused")
    return PurePosixPath(*parts) if parts else PurePosixPath(".")


def _read_small(tar: tarfile.TarFile, member: tarfile.TarInfo, archive: str) -> bytes:
    if member.size > _MAX_METADATA:
        raise ImageError(f"{member.name} in {archive} is too large ({member.size})")
    extracted = tar.extractfile(member)
    if extracted is None:
        raise ImageError(f"cannot read {member.name} in {archive}")
    return extracted.read()


def _blob_digest(path: PurePosixPath, archive: str) -> Digest | None:
    parts = path.parts
    if len(parts) != 3 or parts[0] != "blobs":
        return None
    try:
        return Digest(parts[1], parts[2])
    except InvalidDigestError as exc:
        raise ImageError(f"{archive} has an invalid blob name {path}: {exc}") from None


def _ingest_blob(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo,
    digest: Digest,
    store: ContentStore,
    archive: str,
) -> None:
    extracted = tar.extractfile(member)
    if extracted is None:
        raise ImageError(f"cannot read {member.name} in {archive}")
    if store.exists(digest):
        # Already stored: still hash the member so a corrupt archive is reported, not trusted.
        digester = Digester(digest.algorithm)
        for chunk in iter(lambda: extracted.read(_CHUNK), b""):
            digester.update(chunk)
        if digester.digest() != digest:
            raise DigestMismatchError(
                f"{member.name} in {archive} hashes to {digester.digest()}; refused"
            )
        store.touch(digest)
        return
    # The writer verifies size and digest before the blob becomes visible, and throws it
    # away when anything (a short or corrupt archive too) fails before that.
    try:
        with store.writer(digest, member.size) as writer:
            for chunk in iter(lambda: extracted.read(_CHUNK), b""):
                writer.write(chunk)
    except DigestMismatchError as exc:
        raise DigestMismatchError(
            f"{member.name} in {archive} does not match its digest: {exc}"
        ) from None


def read_tar(fileobj: BinaryIO, store: ContentStore) -> Stored[Index]:
    """Stream an OCI layout tar (optionally compressed) into `store`; returns index.json.

    Every blob is verified against its name; the archive must contain every blob its
    images need (foreign layers excepted). Blobs are committed one by one as they verify,
    so a load that fails part way leaves only whole blobs, which no image uses (prune
    frees them), and no half-written one.
    """
    archive = _archive_name(fileobj)
    layout_seen = False
    index_raw: bytes | None = None
    try:
        for tar, member in tarreader.read_entries(decompressed(fileobj)):
            path = _member_path(member, archive)
            if member.isdir():
                continue
            if not member.isfile():
                raise ImageError(
                    f"{archive}: member {member.name!r} is not a regular file; refused"
                )
            if member.sparse is not None:  # its holes would be streamed into the store
                raise ImageError(f"{archive}: member {member.name!r} is a sparse file; refused")
            if path == PurePosixPath(LAYOUT_FILE):
                check_layout_file(_read_small(tar, member, archive))
                layout_seen = True
            elif path == PurePosixPath(INDEX_FILE):
                index_raw = _read_small(tar, member, archive)
            elif (digest := _blob_digest(path, archive)) is not None:
                _ingest_blob(tar, member, digest, store, archive)
    except tarfile.TarError as exc:
        raise ImageError(f"{archive} is not a valid tar archive: {exc}") from None
    if not layout_seen or index_raw is None:
        raise ImageError(
            f"{archive} is not an OCI image layout archive: it has no "
            + (LAYOUT_FILE if not layout_seen else INDEX_FILE),
            hint="polybuild load reads OCI layout tarballs (docker save from Docker 25+, "
            "polybuild save, skopeo copy ... oci-archive:FILE)",
        )
    index = parse_index(index_raw)
    require_complete(reachable(store, index.value.manifests), archive)
    return index
