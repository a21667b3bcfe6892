"""`--build-context` on polybuild's own nodes: what the frontend and the solver are given.

As BuildKit's Dockerfile frontend treats them (dockerui/namedcontext.go): a directory is a
source of its own with its own `.dockerignore` applied (not the build context's); a git
reference is its checkout (fetched through gitsource/'s cache, `.git` kept only with
`keep-git-dir` in the URL); any other HTTP(S) URL is one file named `context` (mode 0600,
never unpacked, its time the Last-Modified header or 0); `docker-image://REF` is REF; an
OCI layout's image is copied (verified) into this machine's content store and known by
BuildKit's `NAME@DIGEST` reference.
Git and HTTP(S) sources are fetched here once per build, into scratch directories, so a
build on an ssh node sends them like directories.
"""

from __future__ import annotations

import contextlib
import dataclasses
import email.utils
import os
from collections.abc import Iterator
from pathlib import Path

from polybuild.dataroot import data_root
from polybuild.dockerfile.ignore import read_patterns
from polybuild.dockerfile.named import local_name
from polybuild.errors import ContextError, UsageError
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.imagebuild.build_contexts import NamedContext
from polybuild.imagebuild.context_archive import Limits
from polybuild.imagebuild.request import BuildRequest
from polybuild.scratch import scratch_dir

HTTP_FILE = "context"  # BuildKit's llb.Filename for an HTTP(S) named context
HTTP_MODE = 0o600  # and the mode its http source gives the file


def _flag(named: NamedContext) -> str:
    return f"--build-context {named.name}={named.value}"


def needs_fetch(request: BuildRequest) -> bool:
    """Whether some named context is a git or HTTP(S) source not fetched yet."""
    return any(n.kind == "remote" for n in request.build_contexts)


@contextlib.contextmanager
def fetched_named_contexts(
    request: BuildRequest, limits: Limits | None = None
) -> Iterator[BuildRequest]:
    """The request with each git or HTTP(S) named context fetched into a private directory
    (removed after the block); the request itself when none is."""
    if not needs_fetch(request):
        yield request
        return
    with scratch_dir("named-context") as tmp:
        fetched = tuple(
            _fetch(named, tmp / str(i), limits or Limits()) if named.kind == "remote" else named
            for i, named in enumerate(request.build_contexts)
        )
        yield dataclasses.replace(request, build_contexts=fetched)


def _fetch(named: NamedContext, tmp: Path, limits: Limits) -> NamedContext:
    from polybuild.gitsource.url import parse_git_ref

    what = _flag(named)
    tmp.mkdir(mode=0o700)
    try:
        git = parse_git_ref(named.value)
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}", hint="see buildx's docs for git contexts") from None
    if git is not None:
        from polybuild.gitsource.checkout import check_out

        checkout = check_out(git, data_root(), tmp / "git", what, keep_git=bool(git.keep_git_dir))
        return dataclasses.replace(named, directory=checkout.directory, exclude=())
    if not named.value.startswith(("http://", "https://")):
        raise UsageError(f"{what}: not a git reference, an HTTP(S) URL or a directory")
    from polybuild.imagebuild.context_source import download_url

    directory = tmp / "http"
    directory.mkdir(mode=0o700)
    got = download_url(named.value, directory / HTTP_FILE, limits.archive_bytes, what)
    os.chmod(directory / HTTP_FILE, HTTP_MODE)
    mtime = _http_time(got.last_modified)
    os.utime(directory / HTTP_FILE, (mtime, mtime))
    return dataclasses.replace(named, directory=directory, exclude=())


def _http_time(value: str) -> float:
    """BuildKit's file time for an HTTP source: Last-Modified, else the Unix epoch."""
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() if value else 0.0
    except (TypeError, ValueError):
        return 0.0


def exclude_patterns(named: NamedContext) -> tuple[str, ...]:
    """What a named directory's files exclude: its own `.dockerignore` (at its top only)."""
    if named.exclude is not None:
        return named.exclude
    assert named.directory is not None
    path = named.directory / ".dockerignore"
    try:
        return read_patterns(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise ContextError(f"{_flag(named)}: cannot read {path}: {exc.strerror}") from None


def frontend_images(request: BuildRequest) -> dict[str, str]:
    """BuildOptions.named_images: NAME -> the image's reference."""
    images: dict[str, str] = {}
    for named in request.build_contexts:
        if named.kind == "docker-image":
            images[named.name] = named.value.removeprefix("docker-image://")
        elif named.layout is not None:
            images[named.name] = named.layout.ref
    return images


def frontend_dirs(request: BuildRequest) -> dict[str, tuple[str, ...]]:
    """BuildOptions.named_dirs: NAME -> the patterns its files exclude."""
    _refuse_unfetched(request)
    return {n.name: exclude_patterns(n) for n in request.build_contexts if n.directory}


def solver_dirs(request: BuildRequest) -> dict[str, Path]:
    """SolveOptions.named_dirs: each named directory by its LocalSource name."""
    return {local_name(n.name): n.directory.resolve() for n in request.build_contexts
            if n.directory is not None}  # fmt: skip


def layout_images(request: BuildRequest, content: ContentStore) -> dict[str, Descriptor]:
    """Each OCI layout context's image copied into `content` (verified), by its reference:
    what the base image resolver answers for that reference."""
    from polybuild.imagebuild.layout_context import import_layout_image

    found: dict[str, Descriptor] = {}
    for named in request.build_contexts:
        if named.layout is not None:
            import_layout_image(named.name, named.value, named.layout, content)
            found[named.layout.ref] = named.layout.descriptor
    return found


def _refuse_unfetched(request: BuildRequest) -> None:
    for named in request.build_contexts:
        if named.kind == "remote":  # api.py fetches them before any build on these nodes
            raise UsageError(f"{_flag(named)}: the source was not fetched for this build")


__all__ = [
    "HTTP_FILE",
    "exclude_patterns",
    "fetched_named_contexts",
    "frontend_dirs",
    "frontend_images",
    "layout_images",
    "needs_fetch",
    "solver_dirs",
]
