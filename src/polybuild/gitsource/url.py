"""Git references as BuildKit v0.32 parses them (frontend/dockerfile/dfgitutil,
util/gitutil, util/sshutil), for build contexts and `ADD <git ref>` alike (no I/O).

A git reference is an `http://`, `https://` (only with a path ending in `.git`), `git://` or
`ssh://` URL, or scp-style `user@host:path`; `github.com/...` counts too (a deprecated form
BuildKit takes for build contexts only). Its fragment is `#REF[:SUBDIR]`; its query may say
`ref=`, `tag=`, `branch=`, `subdir=`, `checksum=`/`commit=`, `keep-git-dir[=BOOL]`,
`submodules[=BOOL]`, `mtime=checkout|commit` and `fetch-by-commit[=BOOL]`.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass

__all__ = ["GitRef", "parse_git_ref"]

_SCHEME = re.compile(r"^[a-zA-Z0-9]+://")
_GIT_SCHEMES = ("http", "https", "ssh", "git")
# util/sshutil's gitSSHRegex: user@host:path[?query][#fragment]
_SCP = re.compile(r"^([a-zA-Z0-9\-_]+)@([a-zA-Z0-9\-.]+):(.*?)(?:\?(.*?))?(?:#(.*))?$")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True, slots=True)
class GitRef:
    """A git reference: `remote` without query or fragment, the ref to check out (empty: the
    remote's HEAD), the subdirectory that is the context, an expected commit, and whether
    the checkout keeps its `.git` directory (None: as BUILDKIT_CONTEXT_KEEP_GIT_DIR says)."""

    remote: str
    ref: str = ""
    subdir: str = ""
    checksum: str = ""
    keep_git_dir: bool | None = None
    submodules: bool | None = None


def _error(value: str, reason: str) -> ValueError:
    """Why `value` is no valid git reference; the caller names the argument or instruction."""
    return ValueError(reason)


def _subdir(value: str) -> str:
    """path.Join("/", subdir) without the leading slash: no `..` can leave the repository."""
    return posixpath.normpath("/" + value).lstrip("/") if value else ""


def _bool(value: str, name: str, raw: str) -> bool:
    if value == "":
        return True
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _error(raw, f"invalid {name} value: {value!r}")


def _query(ref: GitRef, query: str, raw: str) -> GitRef:
    """dfgitutil's loadQuery: the query's settings over the fragment's, conflicts refused."""
    values: dict[str, list[str]] = urllib.parse.parse_qs(query, keep_blank_values=True)
    named = {"ref": ref.ref, "subdir": ref.subdir}
    checksum = tag = branch = ""
    keep: bool | None = None
    submodules: bool | None = None
    for key, items in values.items():
        if len(items) > 1:
            raise _error(raw, f"query {key!r} has multiple values")
        item = items[0] if items else ""
        if item == "" and key not in ("submodules", "keep-git-dir", "fetch-by-commit"):
            raise _error(raw, f"query {key!r} has no value")
        if key in ("ref", "subdir"):
            item = _subdir(item) if key == "subdir" else item
            if named[key] and named[key] != item:
                raise _error(raw, f"{key} conflicts: {named[key]!r} vs {item!r}")
            named[key] = item
        elif key == "tag":
            tag = item if item.startswith("refs/tags/") else "refs/tags/" + item
        elif key == "branch":
            branch = item if item.startswith("refs/heads/") else "refs/heads/" + item
        elif key in ("checksum", "commit"):
            checksum = item
        elif key == "keep-git-dir":
            keep = _bool(item, key, raw)
        elif key == "submodules":
            submodules = _bool(item, key, raw)
        elif key == "mtime":
            if item not in ("checkout", "commit"):
                raise _error(raw, f'invalid mtime value: {item!r} (must be "checkout" or "commit")')
        elif key == "fetch-by-commit":
            _bool(item, key, raw)
        else:
            raise _error(raw, f"unexpected query {key!r}")
    if tag and branch:
        raise _error(raw, "branch conflicts with tag")
    for wanted in (tag, branch):
        if wanted:
            if named["ref"] and named["ref"] != wanted:
                raise _error(raw, f"ref conflicts: {named['ref']!r} vs {wanted!r}")
            named["ref"] = wanted
    return GitRef(ref.remote, named["ref"], named["subdir"], checksum, keep, submodules)


def parse_git_ref(value: str) -> GitRef | None:
    """The git reference `value` names, None when it names none (BuildKit's ParseGitRef);
    ValueError (the reason) for a git reference whose query is wrong."""
    if value.startswith(("./", "../")):
        return None
    value_url = "https://" + value if value.startswith("github.com/") else value
    scheme = _SCHEME.match(value_url)
    if scheme:
        name = scheme.group(0)[:-3].lower()
        if name not in _GIT_SCHEMES:
            return None
        parsed = urllib.parse.urlsplit(value_url)
        deprecated = value_url is not value  # github.com/...: no .git needed
        if name in ("http", "https") and not deprecated and not parsed.path.endswith(".git"):
            return None
        remote = urllib.parse.urlunsplit(parsed._replace(query="", fragment=""))
        fragment, query = parsed.fragment, parsed.query
    else:
        match = _SCP.match(value)
        if match is None:
            return None
        user, host, path, query, fragment = match.groups(default="")
        remote = f"{user}@{host}:{path}"
    ref, _, subdir = fragment.partition(":")
    parsed_ref = GitRef(remote, ref, _subdir(subdir))
    if remote.startswith("-") or not remote:
        raise _error(value, "not a git remote")
    return _query(parsed_ref, query, value) if query else parsed_ref
