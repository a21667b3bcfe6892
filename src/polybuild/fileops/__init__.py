"""File operations of a build (COPY, ADD, WORKDIR) on plain directories, with BuildKit's rules.

The solver prepares a writable root (an overlay mount of the destination image) and calls
`copy_files` / `add_url` / `make_dir` on it; `content_checksum` gives the cache key part for
build-context sources. Every path is resolved inside its root as if chrooted.
"""

from polybuild.fileops.add import add_url, is_git_url, url_file_name
from polybuild.fileops.archive import is_archive
from polybuild.fileops.context import content_checksum, list_context_files
from polybuild.fileops.copy import CopyResult, copy_files
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.mkdir import make_dir
from polybuild.fileops.mode import ChmodSpec, parse_chmod
from polybuild.fileops.owner import ResolvedOwner, resolve_owner

__all__ = [
    "ChmodSpec",
    "CopyResult",
    "FileOpError",
    "ResolvedOwner",
    "add_url",
    "content_checksum",
    "copy_files",
    "is_archive",
    "is_git_url",
    "list_context_files",
    "make_dir",
    "parse_chmod",
    "resolve_owner",
    "url_file_name",
]
