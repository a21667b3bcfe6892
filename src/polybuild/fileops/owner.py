"""`--chown user:group` resolved against the destination's /etc/passwd and /etc/group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import ExecutionError
from polybuild.executor.user import resolve_user_in_root
from polybuild.fileops.errors import FileOpError

__all__ = ["ResolvedOwner", "resolve_owner"]


@dataclass(frozen=True, slots=True)
class ResolvedOwner:
    """Numeric owner applied to every entry a COPY/ADD/WORKDIR writes."""

    uid: int
    gid: int


def resolve_owner(dest_root: Path, spec: str, *, instruction: str = "") -> ResolvedOwner | None:
    """BuildKit's readUser: a numeric user gives gid = uid; a name takes the passwd primary group.

    The group part, when given, replaces the gid (a name is looked up in /etc/group). Both
    files are read inside `dest_root` as if chrooted. Unknown names are errors, as the
    Dockerfile reference documents (BuildKit's code falls back to 0 silently).
    """
    spec = spec.strip()
    if not spec:
        return None
    user, _, group = spec.partition(":")
    try:
        if not user:
            uid = gid = 0
        elif user.isdigit():
            uid = gid = int(user)
        else:
            found = resolve_user_in_root(dest_root, user)
            uid, gid = found.uid, found.gid
        if group.isdigit():
            gid = int(group)
        elif group:
            gid = resolve_user_in_root(dest_root, f"0:{group}").gid
    except ExecutionError as exc:
        raise FileOpError(f"--chown={spec}: {exc.message}", instruction=instruction) from None
    return ResolvedOwner(uid, gid)
