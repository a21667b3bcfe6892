"""ADD of an http(s) URL: streamed download, --checksum check, then BuildKit's copy rules."""

from __future__ import annotations

import hashlib
import os
import posixpath
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from polybuild.fileops.copy import CopyResult, copy_files
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.owner import ResolvedOwner
from polybuild.scratch import scratch_dir

if TYPE_CHECKING:
    import httpx

__all__ = ["add_url", "is_git_url", "url_digest", "url_file_name"]

_CHUNK = 1 << 20


def is_git_url(url: str) -> bool:
    """Sources ADD checks out with git (fileops/add_git.py): BuildKit's git references."""
    from polybuild.fileops.add_git import is_git_source

    return is_git_source(url)


def url_file_name(url: str) -> str:
    """dockerfile2llb: the last path element of the URL, or `__unnamed__`."""
    base = posixpath.basename(urlsplit(url).path.rstrip("/") or "/")
    return base if base not in ("", ".", "/", "..") else "__unnamed__"


def add_url(
    url: str,
    dest_root: Path,
    dest: str,
    *,
    chmod: str = "",
    chown: ResolvedOwner | None = None,
    checksum: str = "",
    unpack: bool | None = None,
    keep_git_dir: bool = False,
    source_date_epoch: int | None = None,
    client: httpx.Client | None = None,
    instruction: str = "",
) -> CopyResult:
    """Download `url` and copy it to `dest` like BuildKit's HTTP source plus a FileOp copy.

    The file is named after the URL path when `dest` is a directory, written 0600 and 0:0
    unless --chmod/--chown say otherwise, and dated by Last-Modified when the server sends
    it. `checksum` (`sha256:<hex>`) is verified before anything reaches `dest_root`.
    Archives are extracted only with `unpack=True` (remote archives are not by default).
    """
    if is_git_url(url):
        from polybuild.fileops.add_git import add_git

        return add_git(url, dest_root, dest, chmod=chmod, chown=chown, checksum=checksum,
                       keep_git_dir=keep_git_dir, source_date_epoch=source_date_epoch,
                       instruction=instruction)  # fmt: skip
    algorithm, _, expected = checksum.partition(":")
    if checksum and (algorithm != "sha256" or len(expected) != 64):
        raise FileOpError(
            f"invalid checksum {checksum!r}",
            instruction=instruction,
            hint="use --checksum=sha256:<64 hex digits>",
        )
    name = url_file_name(url)
    own_client = client is None
    import httpx  # imported here: it is slow to import, and most builds add no URL

    http = client or httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0))
    with scratch_dir("add") as tmp:
        target = Path(tmp, name)
        digest = hashlib.sha256()
        try:
            with http.stream("GET", url) as response:
                if response.status_code >= 400:
                    raise FileOpError(
                        f"invalid response status {response.status_code} for {url}",
                        instruction=instruction,
                    )
                with open(target, "wb") as out:
                    for chunk in response.iter_bytes(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
                modified = response.headers.get("last-modified")
        except httpx.HTTPError as exc:
            raise FileOpError(f"failed to download {url}: {exc}", instruction=instruction) from exc
        finally:
            if own_client:
                http.close()
        actual = "sha256:" + digest.hexdigest()
        if checksum and actual != f"sha256:{expected.lower()}":
            raise FileOpError(
                f"digest mismatch for {url}: got {actual}, expected {checksum}",
                instruction=instruction,
            )
        os.chmod(target, 0o600)
        mtime = _http_time(modified) if modified else source_date_epoch
        if mtime is not None:
            os.utime(target, (mtime, mtime))
        return copy_files(
            Path(tmp),
            dest_root,
            [name],
            dest,
            chmod=chmod,
            chown=chown,
            follow_symlinks=False,
            reset_owner=True,
            source_date_epoch=source_date_epoch,
            is_add=bool(unpack),
            unpack=bool(unpack),
            allow_wildcards=False,
            instruction=instruction,
        )


def _http_time(value: str) -> int | None:
    try:
        return int(parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError):
        return None


def url_digest(url: str, *, instruction: str = "") -> str:
    """`sha256:` of what `url` serves now (ADD's cache key: the remote content, as BuildKit);
    for a git reference, the commit it resolves to."""
    if is_git_url(url):
        from polybuild.fileops.add_git import git_digest

        return git_digest(url, instruction=instruction)
    import httpx

    digest = hashlib.sha256()
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=httpx.Timeout(30.0)) as http,
            http.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise FileOpError(
                    f"invalid response status {response.status_code} for {url}",
                    instruction=instruction,
                )
            for chunk in response.iter_bytes(_CHUNK):
                digest.update(chunk)
    except httpx.HTTPError as exc:
        raise FileOpError(f"failed to download {url}: {exc}", instruction=instruction) from exc
    return "sha256:" + digest.hexdigest()
