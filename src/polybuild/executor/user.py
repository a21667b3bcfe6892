"""Resolve a Docker USER string against the image's /etc/passwd and /etc/group."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.errors import ExecutionError
from polybuild.rootfs import read_text_in_root


@dataclass(frozen=True, slots=True)
class ResolvedUser:
    """Numeric identity for the container process, and the home directory for $HOME."""

    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _table(text: str | None, width: int) -> list[list[str]]:
    rows = []
    for line in (text or "").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) >= width:
            rows.append(fields)
    return rows


def resolve_user(user: str, passwd: str | None, group: str | None) -> ResolvedUser:
    """Docker's rules: `name|uid[:group|gid]`; unknown names are errors, unknown ids are fine."""
    user = user.strip() or "0"
    name, _, group_spec = user.partition(":")
    users = _table(passwd, 7)
    groups = _table(group, 4)
    entry = next((u for u in users if u[0] == name), None)
    if entry is None and name.isdigit():
        entry = next((u for u in users if u[2] == name), None)
    if entry is None and not name.isdigit():
        raise ExecutionError(
            f"unable to find user {name}: no matching entries in passwd file",
            hint="create the user in an earlier RUN step, or use a numeric uid",
        )
    uid = int(entry[2]) if entry else int(name)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry and entry[5] else "/"
    if group_spec:
        match = next((g for g in groups if g[0] == group_spec), None)
        if match is None and not group_spec.isdigit():
            raise ExecutionError(
                f"unable to find group {group_spec}: no matching entries in group file",
                hint="create the group in an earlier RUN step, or use a numeric gid",
            )
        gid = int(match[2]) if match else int(group_spec)
        return ResolvedUser(uid, gid, (), home)
    username = entry[0] if entry else None
    extra = sorted(
        {int(g[2]) for g in groups if username and username in g[3].split(",") and g[2].isdigit()}
        - {gid}
    )
    return ResolvedUser(uid, gid, tuple(extra), home)


def resolve_user_in_root(root: Path, user: str) -> ResolvedUser:
    """resolve_user() with the passwd and group files read safely from `root`."""
    return resolve_user(
        user, read_text_in_root(root, "/etc/passwd"), read_text_in_root(root, "/etc/group")
    )
