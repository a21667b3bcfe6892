"""ADD of a git reference, as BuildKit's dockerfile2llb does it: the repository (or its
`#ref:subdir` / `?subdir=`) at one commit, copied into the destination directory.

The commit comes from `git ls-remote` (the cache key: a moved branch is fetched again, an
unchanged one is not), the checkout from the data root's git cache (gitsource/checkout.py),
without `.git` unless `--keep-git-dir=true` or `?keep-git-dir=true`; `--checksum` is a
commit (prefix) the reference must resolve to. Files are owned 0:0 unless --chown says
otherwise, as every ADD source that is not a stage.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from polybuild.dataroot import data_root
from polybuild.errors import ContextError
from polybuild.fileops.copy import CopyResult, copy_files
from polybuild.fileops.errors import FileOpError
from polybuild.fileops.owner import ResolvedOwner
from polybuild.gitsource.url import GitRef, parse_git_ref
from polybuild.scratch import scratch_dir

__all__ = ["add_git", "git_digest", "is_git_source"]


def is_git_source(url: str) -> bool:
    """Whether ADD fetches `url` with git: a git reference, not the `github.com/...` form
    BuildKit takes for build contexts only; a malformed one too (its error is ADD's)."""
    if url.startswith("github.com/"):
        return False
    try:
        return parse_git_ref(url) is not None
    except ValueError:
        return True


def _ref(url: str, checksum: str, keep_git_dir: bool, instruction: str) -> GitRef:
    try:
        ref = parse_git_ref(url)
    except ValueError as exc:
        raise FileOpError(f"{url}: {exc}", instruction=instruction) from None
    assert ref is not None
    if checksum and ref.checksum and checksum != ref.checksum:
        raise FileOpError(
            f"checksum mismatch {checksum!r} != {ref.checksum!r}", instruction=instruction
        )
    if keep_git_dir and ref.keep_git_dir is False:
        raise FileOpError("inconsistent keep-git-dir configuration", instruction=instruction)
    return dataclasses.replace(
        ref, checksum=checksum or ref.checksum, keep_git_dir=keep_git_dir or ref.keep_git_dir
    )


def git_digest(url: str, *, checksum: str = "", instruction: str = "") -> str:
    """ADD's cache key for a git source: the commit it resolves to now."""
    from polybuild.gitsource.checkout import resolve_commit

    ref = _ref(url, checksum, False, instruction)
    try:
        return f"git:{resolve_commit(ref, url)}"
    except ContextError as exc:
        raise FileOpError(exc.message, instruction=instruction) from None


def add_git(
    url: str,
    dest_root: Path,
    dest: str,
    *,
    chmod: str = "",
    chown: ResolvedOwner | None = None,
    checksum: str = "",
    keep_git_dir: bool = False,
    source_date_epoch: int | None = None,
    instruction: str = "",
) -> CopyResult:
    """Check out `url` and copy its tree (or subdirectory) into the directory `dest`."""
    from polybuild.gitsource.checkout import check_out

    ref = _ref(url, checksum, keep_git_dir, instruction)
    with scratch_dir("add") as tmp:
        try:
            checkout = check_out(
                ref, data_root(), tmp / "git", url, keep_git=bool(ref.keep_git_dir)
            )
        except ContextError as exc:
            raise FileOpError(exc.message, instruction=instruction) from None
        return copy_files(
            checkout.directory,
            dest_root,
            ["."],
            dest if dest.endswith("/") else dest + "/",
            chmod=chmod,
            chown=chown,
            follow_symlinks=False,
            reset_owner=True,
            source_date_epoch=source_date_epoch,
            allow_wildcards=False,
            instruction=instruction,
        )
