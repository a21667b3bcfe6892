"""Digest parsing, validation and streaming hashing."""

from __future__ import annotations

import hashlib
import io

import pytest

from polybuild.errors import ImageError
from polybuild.image.digest import Digest, InvalidDigestError, digest_file, is_digest

EMPTY = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_parse_and_format_round_trip() -> None:
    digest = Digest.parse(EMPTY)
    assert digest.algorithm == "sha256"
    assert str(digest) == EMPTY
    assert digest == Digest.of(b"")
    assert digest.short() == "e3b0c44298fc"


def test_sha512_format_is_validated() -> None:
    good = "sha512:" + hashlib.sha512(b"x").hexdigest()
    assert str(Digest.parse(good)) == good
    with pytest.raises(InvalidDigestError, match="128"):
        Digest.parse("sha512:" + "a" * 64)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "sha256",
        "sha256:",
        "sha256:" + "A" * 64,  # upper case is not canonical
        "sha256:" + "a" * 63,
        "sha256:" + "g" * 64,
        "md5:" + "a" * 32,
        "SHA256:" + "a" * 64,
    ],
)
def test_invalid_digests_are_image_errors(text: str) -> None:
    with pytest.raises(ImageError):
        Digest.parse(text)
    assert not is_digest(text)


def test_streaming_hash_matches_hashlib() -> None:
    data = bytes(range(256)) * 10_000
    digest, size = digest_file(io.BytesIO(data))
    assert size == len(data)
    assert digest.hex == hashlib.sha256(data).hexdigest()
