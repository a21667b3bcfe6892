"""A context that arrives as bytes: buildx's archive sniff, the size bound on what is
received, and the entry and declared-size bounds checked before anything is extracted."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest

from polybuild.errors import ContextError
from polybuild.imagebuild.context_archive import (
    Limits,
    copy_bounded,
    extract_context,
    is_archive_head,
)


def _tar(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


PLAIN = _tar({"Dockerfile": b"FROM scratch\n" * 300, "a": b"a"})


@pytest.mark.parametrize(
    ("head", "archive"),
    [
        (PLAIN[:1024], True),
        (gzip.compress(PLAIN)[:1024], True),
        (bz2.compress(PLAIN)[:1024], True),
        (lzma.compress(PLAIN)[:1024], True),
        (b"FROM busybox\nRUN echo hi\n", False),
        (b"\x28\xb5\x2f\xfd" + b"\0" * 20, False),  # zstd: not in buildx's list
        (b"", False),
    ],
)
def test_is_archive_head_as_buildx(head: bytes, archive: bool) -> None:
    assert is_archive_head(head) is archive


def test_copy_bounded_refuses_more_than_the_limit(tmp_path: Path) -> None:
    head = copy_bounded([b"x" * 600, b"y" * 600], tmp_path / "ok", 1200, "CONTEXT '-'")
    assert head == b"x" * 600 + b"y" * 424
    with pytest.raises(ContextError, match=r"CONTEXT '-': more than 1000 bytes"):
        copy_bounded([b"x" * 600, b"y" * 600], tmp_path / "big", 1000, "CONTEXT '-'")


@pytest.mark.parametrize(
    ("limits", "said"),
    [
        (Limits(entries=1), "more than 1 entries in the archive"),
        (Limits(extracted_bytes=3000), "the archive holds more than 3000 bytes"),
    ],
)
def test_bounds_are_checked_before_extraction(tmp_path: Path, limits: Limits, said: str) -> None:
    archive = tmp_path / "ctx.tar.gz"
    archive.write_bytes(gzip.compress(PLAIN))
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ContextError, match=said):
        extract_context(archive, dest, "CONTEXT '-'", limits)
    assert list(dest.iterdir()) == []
    extract_context(archive, dest, "CONTEXT '-'")
    assert sorted(p.name for p in dest.iterdir()) == ["Dockerfile", "a"]


def test_a_corrupt_archive_is_named(tmp_path: Path) -> None:
    archive = tmp_path / "ctx.tar.gz"
    archive.write_bytes(gzip.compress(PLAIN)[:100])  # cut inside the first file
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(ContextError, match=r"^CONTEXT '-': not a valid tar archive"):
        extract_context(archive, dest, "CONTEXT '-'")
