"""A CONTEXT that is not a local directory brought into a private one before a local build:
`-` (a tar archive on stdin, or a bare Dockerfile), a git reference, an HTTP(S) tarball.

Everything downstream reads `BuildRequest.context` as a local directory. `-` is read here
before the request is made (`stdin_context`); a git or HTTP(S) URL stays a URL in the
request (`context_source`, with `context` UNFETCHED) so that a BuildKit daemon can fetch it
itself, and is fetched by `fetched_context` only for a build that runs elsewhere. Each
directory is a scratch directory (0700, removed when the build ends, and by the next
polybuild if this one is killed). Errors are ContextErrors that name the CONTEXT argument.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from polybuild.dataroot import data_root
from polybuild.errors import ContextError, UsageError
from polybuild.imagebuild.context_archive import (
    CHUNK,
    Limits,
    copy_bounded,
    extract_context,
    is_archive_head,
)
from polybuild.imagebuild.context_url import UNFETCHED, GitRef, HttpRef, parse_remote
from polybuild.imagebuild.request import BuildRequest
from polybuild.scratch import scratch_dir

__all__ = [
    "KEEP_GIT_DIR_ARG",
    "Download",
    "StdinContext",
    "download_url",
    "fetched_context",
    "needs_fetch",
    "stdin_context",
]

KEEP_GIT_DIR_ARG = "BUILDKIT_CONTEXT_KEEP_GIT_DIR"
_SCRATCH = "context"
_HTTP_TIMEOUT = 60.0  # seconds without a byte before a download fails


@dataclasses.dataclass(frozen=True, slots=True)
class StdinContext:
    """What `-` turned into: the context directory, and the Dockerfile when stdin was one."""

    directory: Path
    dockerfile_text: bytes | None


def _what(value: str) -> str:
    return f"CONTEXT {value!r}"


@contextlib.contextmanager
def stdin_context(
    stream: BinaryIO, *, dockerfile: str | None, limits: Limits | None = None
) -> Iterator[StdinContext]:
    """`polybuild build -`: stdin is a tar archive (plain, gzip, bzip2, xz: buildx's test of
    the first bytes) extracted as the context, else a Dockerfile with an empty context.
    `dockerfile` is the -f value; buildx's errors for `-f -` and for two Dockerfiles."""
    what = _what("-")
    if dockerfile == "-":
        raise UsageError("invalid argument: can't use stdin for both build context and dockerfile")
    limits = limits or Limits()
    with scratch_dir(_SCRATCH) as tmp:
        received = tmp / "stdin"
        head = copy_bounded(
            iter(lambda: stream.read(CHUNK), b""), received, limits.archive_bytes, what
        )
        directory = tmp / "context"
        directory.mkdir(mode=0o700)
        if not head:
            raise ContextError(
                f"{what}: nothing on stdin", hint="pipe a tar archive or a Dockerfile"
            )
        if is_archive_head(head):
            extract_context(received, directory, what, limits)
            received.unlink()
            yield StdinContext(directory, None)
            return
        if dockerfile:
            raise UsageError(
                "ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles"
            )
        text = received.read_bytes()
        received.unlink()
        yield StdinContext(directory, text)


def needs_fetch(request: BuildRequest) -> bool:
    """Whether the request's context is a URL not yet brought here."""
    return request.context == UNFETCHED


@contextlib.contextmanager
def fetched_context(request: BuildRequest, limits: Limits | None = None) -> Iterator[BuildRequest]:
    """The request with its git or HTTP(S) context in a private directory, removed after;
    the request as it is when its context is local already."""
    if not needs_fetch(request):
        yield request
        return
    with scratch_dir(_SCRATCH) as tmp:
        yield fetch_into(request, tmp, limits or Limits())


def fetch_into(request: BuildRequest, tmp: Path, limits: Limits) -> BuildRequest:
    """Fetch the request's URL context into the new directory `tmp/context` (blocking)."""
    value = request.context_source
    remote = parse_remote(value)
    if remote is None:  # make_request marks only URLs UNFETCHED
        raise ContextError(f"{_what(value)}: not a git or HTTP(S) URL")
    dockerfile = request.dockerfile
    if isinstance(remote, GitRef):
        directory = _git_context(request, remote, tmp)
    else:
        directory, bare = _http_context(remote, tmp, limits)
        if bare is not None and dockerfile is None and request.dockerfile_text is None:
            dockerfile = bare
    if dockerfile is not None and not dockerfile.is_absolute():
        # -f with a remote context names a file in that context, as buildx sends it.
        dockerfile = _inside(directory, dockerfile, value)
    return dataclasses.replace(request, context=directory, dockerfile=dockerfile)


def _inside(directory: Path, name: Path, value: str) -> Path:
    path = Path(os.path.realpath(directory / name))
    if Path(os.path.realpath(directory)) not in path.parents:
        raise ContextError(f"{_what(value)}: the Dockerfile {str(name)!r} is outside the context")
    return path


def _keep_git(request: BuildRequest, ref: GitRef) -> bool:
    value = request.build_args.get(KEEP_GIT_DIR_ARG, "").strip().lower()
    return bool(ref.keep_git_dir) or value in ("1", "t", "true")


def _git_context(request: BuildRequest, ref: GitRef, tmp: Path) -> Path:
    from polybuild.gitsource.checkout import check_out

    what = _what(request.context_source)
    checkout = check_out(ref, data_root(), tmp / "context", what, keep_git=_keep_git(request, ref))
    return checkout.directory


@dataclasses.dataclass(frozen=True, slots=True)
class Download:
    """A downloaded file's first bytes and the server's Last-Modified header ("" if none)."""

    head: bytes
    last_modified: str = ""


def download_url(url: str, dest: Path, limit: int, what: str) -> Download:
    """`url` downloaded into the new file `dest` (at most `limit` bytes). ContextErrors
    start with `what`."""
    import httpx

    try:
        with (
            httpx.Client(follow_redirects=True, timeout=_HTTP_TIMEOUT) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise ContextError(
                    f"{what}: HTTP {response.status_code} {response.reason_phrase}".rstrip()
                )
            head = copy_bounded(response.iter_bytes(CHUNK), dest, limit, what)
            return Download(head, response.headers.get("last-modified", ""))
    except httpx.HTTPError as exc:
        raise ContextError(f"{what}: {type(exc).__name__}: {exc}") from None


def _http_context(ref: HttpRef, tmp: Path, limits: Limits) -> tuple[Path, Path | None]:
    """The URL downloaded (size-bounded) and extracted; when it is no archive, a context
    holding only the file, named `context`, which is then the Dockerfile (BuildKit's rule)."""
    what = _what(ref.url)
    download = tmp / "download"
    head = download_url(ref.url, download, limits.archive_bytes, what).head
    directory = tmp / "context"
    directory.mkdir(mode=0o700)
    if is_archive_head(head):
        extract_context(download, directory, what, limits)
        download.unlink()
        return directory, None
    bare = directory / "context"
    download.rename(bare)
    return directory, bare
