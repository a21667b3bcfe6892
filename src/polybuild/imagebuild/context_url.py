"""What a CONTEXT argument that is not a directory names: `-`, a git reference or an HTTP(S)
URL, as buildx tells them apart (no I/O): a git reference as BuildKit parses it
(gitsource/url.py), else any `http(s)://` URL is a tarball (or a bare Dockerfile) to
download, else CONTEXT is a local path.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import UsageError
from polybuild.gitsource.url import GitRef
from polybuild.gitsource.url import parse_git_ref as _parse_git_ref

__all__ = ["UNFETCHED", "GitRef", "HttpRef", "is_remote", "parse_git_ref", "parse_remote"]

# A request's `context` while its remote CONTEXT is not fetched yet (a BuildKit daemon
# fetches it itself): a path that can never be a directory, so a reader fails loudly.
UNFETCHED = Path("/dev/null/unfetched-context")


@dataclass(frozen=True, slots=True)
class HttpRef:
    """An HTTP(S) context: a tarball (or a Dockerfile) at `url`."""

    url: str


def parse_git_ref(value: str) -> GitRef | None:
    """The git reference CONTEXT `value` names, or None; UsageError naming it when its
    fragment or query is wrong."""
    try:
        return _parse_git_ref(value)
    except ValueError as exc:
        raise UsageError(
            f"CONTEXT {value!r}: {exc}", hint="see buildx's docs for git contexts"
        ) from None


def parse_remote(value: str) -> GitRef | HttpRef | None:
    """A git reference, else an HTTP(S) URL, else None (a local path or `-`)."""
    git = parse_git_ref(value)
    if git is not None:
        return git
    if value.startswith(("http://", "https://")):
        return HttpRef(value)
    return None


def is_remote(value: str) -> bool:
    """buildx's IsRemoteURL: an HTTP(S) URL or a git reference."""
    return parse_remote(value) is not None
