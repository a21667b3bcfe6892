"""CONTEXT values as buildx and BuildKit v0.32 classify them: git references (the cases of
BuildKit's dfgitutil/git_ref_test.go), HTTP(S) URLs, and what stays a local path."""

from __future__ import annotations

import pytest

from polybuild.errors import UsageError
from polybuild.imagebuild.context_url import (
    UNFETCHED,
    GitRef,
    HttpRef,
    is_remote,
    parse_git_ref,
    parse_remote,
)
from polybuild.imagebuild.request import make_request


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com/", None),
        ("https://example.com/foo", None),
        ("https://example.com/foo.git", GitRef("https://example.com/foo.git")),
        ("https://example.com/foo.git#deadbeef", GitRef("https://example.com/foo.git", "deadbeef")),
        ("https://example.com/foo.git#release/1.2",
         GitRef("https://example.com/foo.git", "release/1.2")),
        ("https://example.com/foo.git/", None),
        ("https://example.com/foo.git.bar", None),
        ("git://example.com/foo", GitRef("git://example.com/foo")),
        ("github.com/moby/buildkit", GitRef("https://github.com/moby/buildkit")),
        ("github.com/moby/buildkit#master", GitRef("https://github.com/moby/buildkit", "master")),
        ("custom.xyz/moby/buildkit.git", None),
        ("https://github.com/moby/buildkit", None),
        ("https://foo:bar@github.com/moby/buildkit.git",
         GitRef("https://foo:bar@github.com/moby/buildkit.git")),
        ("git@github.com:moby/buildkit", GitRef("git@github.com:moby/buildkit")),
        ("git@bitbucket.org:atlassianlabs/atlassian-docker.git",
         GitRef("git@bitbucket.org:atlassianlabs/atlassian-docker.git")),
        ("https://github.com/foo/bar.git#baz/qux:quux/quuz",
         GitRef("https://github.com/foo/bar.git", "baz/qux", "quux/quuz")),
        ("http://github.com/docker/docker.git:#branch", None),
        ("https://github.com/docker/docker.git#:myfolder",
         GitRef("https://github.com/docker/docker.git", "", "myfolder")),
        ("./.git", None),
        (".git", None),
        ("https://github.com/docker/docker.git?ref=v1.0.0&subdir=/subdir",
         GitRef("https://github.com/docker/docker.git", "v1.0.0", "subdir")),
        ("https://github.com/moby/buildkit.git?subdir=/subdir#v1.0.0",
         GitRef("https://github.com/moby/buildkit.git", "v1.0.0", "subdir")),
        ("https://github.com/moby/buildkit.git?tag=v1.0.0",
         GitRef("https://github.com/moby/buildkit.git", "refs/tags/v1.0.0")),
        ("https://github.com/moby/buildkit.git?branch=main",
         GitRef("https://github.com/moby/buildkit.git", "refs/heads/main")),
        ("ssh://git@host:2222/r.git?keep-git-dir&checksum=abc123",
         GitRef("ssh://git@host:2222/r.git", "", "", "abc123", True)),
        ("git@host:r.git#v1:../../etc", GitRef("git@host:r.git", "v1", "etc")),
        ("file:///srv/repo.git", None),  # not a protocol BuildKit fetches git over
    ],
)  # fmt: skip
def test_parse_git_ref(value: str, expected: GitRef | None) -> None:
    assert parse_git_ref(value) == expected


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("https://h/r.git?ref=a&ref=b", "query 'ref' has multiple values"),
        ("https://h/r.git?ref=", "query 'ref' has no value"),
        ("https://h/r.git?tag=v1&branch=main", "branch conflicts with tag"),
        ("https://h/r.git?ref=main#dev", "ref conflicts: 'dev' vs 'main'"),
        ("https://h/r.git?keep-git-dir=maybe", "invalid keep-git-dir value: 'maybe'"),
        ("https://h/r.git?mtime=now", "invalid mtime value: 'now'"),
        ("https://h/r.git?depth=1", "unexpected query 'depth'"),
    ],
)
def test_bad_git_queries_are_usage_errors(value: str, said: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_git_ref(value)
    assert str(caught.value).startswith(f"CONTEXT {value!r}: {said}")


def test_http_urls_and_local_paths() -> None:
    assert parse_remote("https://example.com/ctx.tar.gz") == HttpRef(
        "https://example.com/ctx.tar.gz"
    )
    assert parse_remote("http://127.0.0.1:8080/Dockerfile") == HttpRef(
        "http://127.0.0.1:8080/Dockerfile"
    )
    for local in (".", "-", "ctx", "/srv/ctx", "./git@host:x"):
        assert not is_remote(local)


def test_make_request_keeps_a_url_unfetched() -> None:
    request = make_request("git@github.com:moby/buildkit.git#v0.32.2")
    assert request.context == UNFETCHED and not request.context.is_dir()
    assert request.context_source == "git@github.com:moby/buildkit.git#v0.32.2"
    local = make_request(".")
    assert local.context_source == "" and str(local.context) == "."
