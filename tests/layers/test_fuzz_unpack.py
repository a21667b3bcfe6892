"""Fuzzing unpack_layer: any stream unpacks inside the root or fails with a PolybuildError."""

from __future__ import annotations

import gzip
import os
import stat
import tarfile
import tempfile
import uuid
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import TypeVar

import zstandard
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from polybuild.errors import PolybuildError
from polybuild.layers import UnpackMode, unpack_layer
from tests.conftest import fuzz_examples
from tests.layers.trees import (
    end_of_archive,
    file_size_limit,
    pad_block,
    pax_header,
    sparse_member,
)

T = TypeVar("T")
# A name no real file has: finding it anywhere outside the root means an escape.
PWNED = f"pwned-{uuid.uuid4().hex[:12]}"
# Stand-ins, replaced per example by absolute paths outside the root.
OUTSIDE, SENTINEL, VICTIM = "@OUTSIDE", "@SENTINEL", "@VICTIM"

components = st.sampled_from(
    [
        "a",
        "a/file",
        "b",
        "lnk",
        "up",
        "..",
        ".",
        "",
        PWNED,
        ".wh.a",
        ".wh.lnk",
        ".wh..wh..opq",
        ".wh..",
        ".wh.",
        f".wh.{PWNED}",
        OUTSIDE,
        SENTINEL,
        VICTIM,
        "tmp",
        "x\x00y",
        "\udcff\udcfe",
        "n" * 120,
    ]
)
paths = st.builds(
    lambda absolute, parts: ("/" if absolute else "") + "/".join(parts),
    st.booleans(),
    st.lists(components, max_size=5),
)
kinds = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.AREGTYPE,
        tarfile.CONTTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
        tarfile.GNUTYPE_SPARSE,
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        b"Z",
        b"V",
    ]
)
forged_sizes = st.sampled_from([0, 1, 511, 513, 10**6, 8**11 - 1, 10**12, 2**62, -1])
pax_values = st.one_of(
    st.sampled_from(
        ["nan", "inf", "-1", "0", "1", "1e300", "9" * 30, "1,2,3", "0,10,5,10", "y", "BINARY"]
    ),
    paths,
    st.text(max_size=20),
)
pax_keys = st.sampled_from(
    [
        "path",
        "linkpath",
        "size",
        "mtime",
        "uid",
        "gid",
        "uname",
        "hdrcharset",
        "SCHILY.xattr.user.x",
        "SCHILY.xattr.trusted.overlay.opaque",
        "SCHILY.xattr.trusted.overlay.redirect",
        "SCHILY.xattr.security.capability",
        "GNU.sparse.map",
        "GNU.sparse.size",
        "GNU.sparse.realsize",
        "GNU.sparse.major",
        "GNU.sparse.minor",
        "GNU.sparse.name",
        "GNU.sparse.offset",
        "GNU.sparse.numbytes",
    ]
)


@dataclass(frozen=True)
class Plain:
    """One entry built with tarfile's own header writer, then possibly lying about its size."""

    name: str
    kind: bytes
    linkname: str
    mode: int
    ids: tuple[int, int]
    devices: tuple[int, int]
    data: bytes
    forged_size: int | None
    pax: tuple[tuple[str, str], ...]
    format: int


@dataclass(frozen=True)
class Sparse:
    """A sparse file in one of GNU tar's formats; unless `ordered`, its map is nonsense."""

    name: str
    realsize: int
    segments: tuple[tuple[int, bytes], ...]
    format: str
    ordered: bool

    def map(self) -> tuple[int, list[tuple[int, bytes]]]:
        """(real size, segments); an ordered map reads offsets as gaps after the last end."""
        if not self.ordered:
            return self.realsize, list(self.segments)
        segments, end = [], 0
        for gap, data in self.segments:
            segments.append((end + gap, data))
            end += gap + len(data)
        return end + self.realsize, segments


@dataclass(frozen=True)
class Raw:
    """Bytes that are whatever they are: random blocks, zero blocks, half headers."""

    data: bytes


def _sometimes(strategy: st.SearchStrategy[T], otherwise: T) -> st.SearchStrategy[T]:
    """`strategy` in about one example out of four; most streams should parse a while."""
    return st.one_of(st.just(otherwise), st.just(otherwise), st.just(otherwise), strategy)


plain = st.builds(
    Plain,
    name=paths,
    kind=kinds,
    linkname=paths,
    mode=st.integers(0, 0o7777),
    ids=st.tuples(st.sampled_from([0, 1000, 65534]), st.sampled_from([0, 1000, 65534])),
    devices=st.tuples(st.integers(0, 300), st.integers(0, 300)),
    data=st.binary(max_size=1200),
    forged_size=_sometimes(forged_sizes, None),
    pax=st.lists(st.tuples(pax_keys, pax_values), max_size=4).map(tuple),
    format=st.sampled_from([tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT]),
)
sparse = st.builds(
    Sparse,
    name=paths,
    realsize=st.one_of(st.integers(0, 1 << 20), st.sampled_from([1 << 30, 8**11 - 1])),
    segments=st.lists(
        st.tuples(st.integers(0, 1 << 21), st.binary(min_size=0, max_size=600)), max_size=6
    ).map(tuple),
    format=st.sampled_from(["gnu", "pax0.0", "pax0.1", "pax1.0"]),
    ordered=st.one_of(st.just(True), st.just(True), st.just(False)),
)
raw = st.builds(
    Raw,
    st.one_of(
        st.binary(max_size=1100),
        st.just(bytes(tarfile.BLOCKSIZE)),
        st.binary(min_size=tarfile.BLOCKSIZE, max_size=tarfile.BLOCKSIZE),
    ),
)


@dataclass(frozen=True)
class Layer:
    entries: tuple[Plain | Sparse | Raw, ...]
    end_marker: bool
    cut: int | None
    flips: tuple[tuple[int, int], ...]
    compression: str
    random_bytes: bytes | None


layers = st.builds(
    Layer,
    entries=st.lists(st.one_of(*[plain] * 6, sparse, sparse, raw), max_size=8).map(tuple),
    end_marker=st.booleans(),
    cut=_sometimes(st.integers(0, 20_000), None),
    flips=_sometimes(
        st.lists(st.tuples(st.integers(0, 20_000), st.integers(0, 255)), max_size=3).map(tuple),
        (),
    ),
    compression=st.sampled_from(["none", "gzip", "zstd"]),
    random_bytes=_sometimes(st.binary(max_size=2000), None),
)


def _place(text: str, out: Path) -> str:
    return (
        text.replace(SENTINEL, str(out / "sentinel"))
        .replace(VICTIM, str(out / "victim"))
        .replace(OUTSIDE, str(out))
    )


def _plain_bytes(entry: Plain, out: Path) -> bytes:
    info = tarfile.TarInfo(_place(entry.name, out))
    info.type = entry.kind
    info.linkname = _place(entry.linkname, out)
    info.mode = entry.mode
    info.uid, info.gid = entry.ids
    info.devmajor, info.devminor = entry.devices
    info.mtime = 1_600_000_000
    data = entry.data
    if entry.forged_size is not None:
        info.size = entry.forged_size
    elif entry.kind in tarfile.REGULAR_TYPES or entry.kind not in tarfile.SUPPORTED_TYPES:
        info.size = len(data)
    else:
        data = b""  # links, directories and devices have no data (unless forged)
    try:
        header = info.tobuf(entry.format)
    except ValueError:  # a field the chosen format cannot hold; GNU's base-256 can
        header = info.tobuf(tarfile.GNU_FORMAT)
    extra = pax_header([(k, _place(v, out)) for k, v in entry.pax]) if entry.pax else b""
    return extra + header + pad_block(data)


def _layer_bytes(layer: Layer, out: Path) -> bytes:
    if layer.random_bytes is not None:
        return layer.random_bytes
    parts = []
    for entry in layer.entries:
        if isinstance(entry, Plain):
            parts.append(_plain_bytes(entry, out))
        elif isinstance(entry, Sparse):
            realsize, segments = entry.map()
            parts.append(sparse_member(_place(entry.name, out), realsize, segments, entry.format))
        else:
            parts.append(entry.data)
    if layer.end_marker:
        parts.append(end_of_archive())
    data = bytearray(b"".join(parts))
    for pos, value in layer.flips:
        if pos < len(data):
            data[pos] = value
    if layer.cut is not None:
        del data[layer.cut :]
    if layer.compression == "gzip":
        return gzip.compress(bytes(data))
    if layer.compression == "zstd":
        return zstandard.ZstdCompressor().compress(bytes(data))
    return bytes(data)


def _lower_layer(root: Path, out: Path) -> None:
    """What earlier layers left: files to whiteout, and links pointing out of the root."""
    (root / "a").mkdir()
    (root / "a" / "file").write_bytes(b"lower")
    (root / "tmp").mkdir()
    os.symlink(out / "sentinel", root / "lnk")
    os.symlink("../../../../..", root / "up")


def _fingerprint(path: Path) -> tuple[object, ...]:
    st_ = os.lstat(path)
    listing = sorted(os.listdir(path)) if stat.S_ISDIR(st_.st_mode) else path.read_bytes()
    return (
        st_.st_ino,
        st_.st_mode,
        st_.st_nlink,
        st_.st_uid,
        st_.st_size,
        st_.st_mtime_ns,
        st_.st_ctime_ns,
        listing,
        os.listxattr(path, follow_symlinks=False),
    )


@settings(
    max_examples=fuzz_examples(200),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(layer=layers, mode=st.sampled_from(UnpackMode), trusted=st.booleans())
def test_any_stream_unpacks_inside_the_root_or_fails_cleanly(
    layer: Layer, mode: UnpackMode, trusted: bool
) -> None:
    with tempfile.TemporaryDirectory(prefix="fuzz-unpack-") as tmp:
        out = Path(tmp)
        root = out / "root"
        root.mkdir()
        (out / "sentinel").mkdir()
        (out / "victim").write_bytes(b"host data\n")
        _lower_layer(root, out)
        watched = [out, out / "sentinel", out / "victim"]
        before = [_fingerprint(p) for p in watched]
        blob = _layer_bytes(layer, out)
        # A regression writing holes out as zeros must not fill the disk.
        with file_size_limit((1 << 30) + (1 << 20)):
            try:
                result = unpack_layer(BytesIO(blob), root, mode=mode, trusted=trusted)
                event(f"unpacked {min(result.entries, 3)}+ entries")
            except PolybuildError as exc:
                event(f"{type(exc).__name__}: {str(exc).split(':')[-1].strip()[:40]}")
        assert [_fingerprint(p) for p in watched] == before
        assert sorted(os.listdir(out)) == ["root", "sentinel", "victim"]
        assert os.listdir(out / "sentinel") == []
        for place in (Path("/"), Path("/tmp"), out.parent):
            assert not os.path.lexists(place / PWNED), f"escaped to {place / PWNED}"
