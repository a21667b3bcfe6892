"""USER resolution against the image's passwd and group files (Docker's rules)."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.errors import ExecutionError
from polybuild.executor.user import ResolvedUser, resolve_user, resolve_user_in_root

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:App:/home/app:/bin/sh\n"
GROUP = "root:x:0:\nappgrp:x:1001:\nwheel:x:10:app,other\naudio:x:29:app\n"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("", ResolvedUser(0, 0, (), "/root")),
        ("root", ResolvedUser(0, 0, (), "/root")),
        ("app", ResolvedUser(1000, 1001, (10, 29), "/home/app")),
        ("1000", ResolvedUser(1000, 1001, (10, 29), "/home/app")),
        ("app:wheel", ResolvedUser(1000, 10, (), "/home/app")),
        ("app:7", ResolvedUser(1000, 7, (), "/home/app")),
        ("4242", ResolvedUser(4242, 0, (), "/")),
        ("4242:4343", ResolvedUser(4242, 4343, (), "/")),
    ],
)
def test_resolve(user: str, expected: ResolvedUser) -> None:
    assert resolve_user(user, PASSWD, GROUP) == expected


def test_unknown_name_and_group_are_errors() -> None:
    with pytest.raises(ExecutionError, match="unable to find user ghost"):
        resolve_user("ghost", PASSWD, GROUP)
    with pytest.raises(ExecutionError, match="unable to find group nogrp"):
        resolve_user("app:nogrp", PASSWD, GROUP)


def test_passwd_symlink_cannot_escape_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    outside = tmp_path / "outside-passwd"
    outside.write_text("evil:x:0:0::/:/bin/sh\n")
    # An absolute symlink is resolved inside the root, where it names nothing.
    (root / "etc" / "passwd").symlink_to(outside)
    with pytest.raises(ExecutionError):
        resolve_user_in_root(root, "evil")
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("../../outside-passwd")
    with pytest.raises(ExecutionError):
        resolve_user_in_root(root, "evil")
