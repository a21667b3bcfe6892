"""--chown resolution against the destination's passwd/group, and WORKDIR ownership."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from polybuild.fileops import FileOpError, ResolvedOwner, copy_files, make_dir, resolve_owner
from tests.fileops.trees import make_tree

PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"
GROUP = "root:x:0:\nstaff:x:50:\napps:x:1001:\n"


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "image", {"etc/passwd": PASSWD, "etc/group": GROUP})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app", ResolvedOwner(1000, 1001)),  # a name: its passwd primary group
        ("app:staff", ResolvedOwner(1000, 50)),
        ("1000", ResolvedOwner(1000, 1000)),  # BuildKit: a numeric user gives gid = uid
        ("55", ResolvedOwner(55, 55)),
        ("10:11", ResolvedOwner(10, 11)),
        ("app:7", ResolvedOwner(1000, 7)),
        ("4242:staff", ResolvedOwner(4242, 50)),
    ],
)
def test_resolve_owner(image: Path, spec: str, expected: ResolvedOwner) -> None:
    assert resolve_owner(image, spec) == expected


def test_numeric_ids_need_no_passwd(tmp_path: Path) -> None:
    assert resolve_owner(tmp_path, "12:34") == ResolvedOwner(12, 34)
    assert resolve_owner(tmp_path, "") is None


@pytest.mark.parametrize("spec", ["nobody", "app:nogroup"])
def test_unknown_names_fail(image: Path, spec: str) -> None:
    with pytest.raises(FileOpError, match=f"--chown={spec}"):
        resolve_owner(image, spec, instruction=f"COPY --chown={spec} a /b")


def test_passwd_symlink_is_read_inside_the_root(tmp_path: Path) -> None:
    host = make_tree(tmp_path / "host", {"passwd": "evil:x:7:7::/:/bin/sh\n"})
    image = make_tree(tmp_path / "image", {"etc/": None})
    os.symlink(str(host / "passwd"), image / "etc" / "passwd")
    with pytest.raises(FileOpError):
        resolve_owner(image, "evil")


@pytest.mark.root
def test_copy_with_chown_by_name(image: Path, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"d/f": "x"})
    owner = resolve_owner(image, "app:staff")
    copy_files(src, image, ["d"], "/srv/data/", chown=owner)
    for rel in ("srv", "srv/data", "srv/data/f"):
        st = os.stat(image / rel)
        assert (st.st_uid, st.st_gid) == (1000, 50), rel


@pytest.mark.root
def test_workdir_creates_parents_owned_by_user(image: Path) -> None:
    make_dir(image, "/home/app/work", owner=resolve_owner(image, "app"))
    for rel in ("home", "home/app", "home/app/work"):
        st = os.stat(image / rel)
        assert (st.st_uid, st.st_gid) == (1000, 1001)
        assert stat.S_IMODE(st.st_mode) == 0o755


@pytest.mark.root
def test_workdir_leaves_existing_directories_alone(image: Path) -> None:
    os.chmod(image / "etc", 0o700)
    make_dir(image, "/etc/app", owner=ResolvedOwner(5, 5))
    st = os.stat(image / "etc")
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o700)
    assert os.stat(image / "etc" / "app").st_uid == 5


def test_workdir_with_source_date_epoch(image: Path) -> None:
    make_dir(image, "/a/b/c", source_date_epoch=1_600_000_000)
    assert {os.stat(image / p).st_mtime for p in ("a", "a/b", "a/b/c")} == {1_600_000_000}
