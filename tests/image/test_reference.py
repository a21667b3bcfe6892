"""Reference parsing and Docker normalisation."""

from __future__ import annotations

import pytest

from polybuild.errors import InvalidReferenceError
from polybuild.image.reference import parse

HEX = "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/user/app", "docker.io/user/app:latest", "user/app:latest"),
        ("user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
        ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
        ("localhost:5000/a/b:1", "localhost:5000/a/b:1", "localhost:5000/a/b:1"),
        ("ghcr.io/org/app", "ghcr.io/org/app:latest", "ghcr.io/org/app:latest"),
        ("[::1]:5000/app", "[::1]:5000/app:latest", "[::1]:5000/app:latest"),
        (
            f"busybox@sha256:{HEX}",
            f"docker.io/library/busybox@sha256:{HEX}",
            f"busybox@sha256:{HEX}",
        ),
        (
            f"busybox:1@sha256:{HEX}",
            f"docker.io/library/busybox:1@sha256:{HEX}",
            f"busybox:1@sha256:{HEX}",
        ),
        ("a__b/c-d.e/f---g", "docker.io/a__b/c-d.e/f---g:latest", "a__b/c-d.e/f---g:latest"),
    ],
)
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = parse(text)
    assert str(ref) == full
    assert ref.familiar() == familiar


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("Busybox", "must be lowercase"),
        ("ghcr.io/Org/app", "must be lowercase"),
        (HEX, "64-byte hexadecimal"),
        ("busybox:" + "t" * 129, "format"),
        ("busybox:-bad", "format"),
        ("a//b", "format"),
        ("a_-b", "format"),
        ("-a", "format"),
        ("busybox@sha256:abc", "format"),
        ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
        ("x/" + "a" * 260, "longer than 255"),
    ],
)
def test_invalid_references(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError, match=message):
        parse(text)


def test_tag_of_128_chars_is_allowed() -> None:
    assert parse("busybox:" + "t" * 128).tag == "t" * 128


def test_no_default_tag_when_asked() -> None:
    assert parse("busybox", default_tag=False).tag == ""
    assert parse(f"busybox@sha256:{HEX}").tag == ""
    assert parse("busybox").repository().name == "docker.io/library/busybox"
