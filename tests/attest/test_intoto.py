"""Package URLs as BuildKit's RefToPURL writes them (its own test cases, util/purl) and
statements as Go's encoding/json writes in-toto-golang's Statement."""

from __future__ import annotations

import json

import pytest

from polybuild.attest import gojson
from polybuild.attest.intoto import STATEMENT_V1, Subject, image_subjects, package_url, statement
from polybuild.image.digest import Digest
from polybuild.platforms import Platform

DIGEST = "sha256:" + "a" * 64
ARM = Platform("linux", "arm64", "v8")  # normalised: v8 dropped


@pytest.mark.parametrize(
    ("ref", "platform", "expected"),
    [
        ("alpine", None, "pkg:docker/alpine@latest"),
        ("library/alpine:3.15", None, "pkg:docker/alpine@3.15"),
        ("docker.io/library/alpine:latest", None, "pkg:docker/alpine@latest"),
        (f"docker.io/library/alpine:latest@{DIGEST}", None,
         f"pkg:docker/alpine@latest?digest={DIGEST}"),
        (f"docker.io/library/alpine@{DIGEST}", None, f"pkg:docker/alpine?digest={DIGEST}"),
        ("user/test:v2", None, "pkg:docker/user/test@v2"),
        ("ghcr.io/foo/bar:v2", None, "pkg:docker/ghcr.io/foo/bar@v2"),
        ("ghcr.io/foo/bar", None, "pkg:docker/ghcr.io/foo/bar@latest"),
        ("busybox", ARM, "pkg:docker/busybox@latest?platform=linux%2Farm64"),
        (f"busybox@{DIGEST}", ARM, f"pkg:docker/busybox?digest={DIGEST}&platform=linux%2Farm64"),
        ("localhost:5000/a/b:1", Platform("linux", "arm", "v7"),
         "pkg:docker/localhost%3A5000/a/b@1?platform=linux%2Farm%2Fv7"),
    ],
)  # fmt: skip
def test_package_urls_are_buildkits(ref: str, platform: Platform | None, expected: str) -> None:
    assert package_url("docker", ref, platform) == expected


def test_image_subjects_one_per_name_none_when_unnamed() -> None:
    digest = Digest.parse("sha256:" + "b" * 64)
    subjects = image_subjects(["a.io/x:1", "", "b.io/y"], Platform("linux", "amd64"), digest)
    assert [s.name for s in subjects] == [
        "pkg:docker/a.io/x@1?platform=linux%2Famd64",
        "pkg:docker/b.io/y@latest?platform=linux%2Famd64",
    ]
    assert subjects[0].digest == {"sha256": "b" * 64}
    assert image_subjects([], Platform("linux", "amd64"), digest) == ()


def test_a_statement_is_compact_go_json_in_in_totos_field_order() -> None:
    predicate = b'{\n  "b": "<tag> & \\u2028",\n  "a": [1, 2]\n}'
    made = statement(
        "https://example.com/p", predicate, [Subject("n", {"sha512": "c", "sha256": "d"})]
    )
    assert made.to_json() == (
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://example.com/p",'
        b'"subject":[{"name":"n","digest":{"sha256":"d","sha512":"c"}}],'
        b'"predicate":{"b":"\\u003ctag\\u003e \\u0026 \\u2028","a":[1,2]}}'
    )
    assert made.type == STATEMENT_V1
    assert json.loads(made.to_json_indent()) == json.loads(made.to_json())
    assert made.to_json_indent().startswith(b'{\n  "_type"')


def test_go_times_keep_nanoseconds_and_drop_trailing_zeros() -> None:
    from datetime import UTC, datetime

    moment = datetime(2026, 12, 3, 14, 11, 46, 9932, tzinfo=UTC)
    assert gojson.rfc3339_nano(moment) == "2026-12-03T14:11:46.009932Z"
    assert gojson.rfc3339_nano(moment, 9932657) == "2026-12-03T14:11:46.009932657Z"
    assert gojson.rfc3339_nano(moment.replace(microsecond=0)) == "2026-12-03T14:11:46Z"
