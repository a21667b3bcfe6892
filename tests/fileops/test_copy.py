"""COPY rules against tmp directories: one table row per Dockerfile reference / BuildKit rule."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from polybuild.fileops import FileOpError, ResolvedOwner, copy_files
from tests.fileops.trees import describe, make_tree

SOURCE = {
    "a.txt": "A",
    "b.txt": "B",
    "c.md": "C",
    "dir/x.txt": "X",
    "dir/sub/y.md": "Y",
    "dir/.hidden": "H",
    "empty/": None,
    "link-to-a": "->a.txt",
    "link-to-dir": "->dir",
    "arr[0].txt": "ARR",
}

CASES = [
    # (sources, dest, expected subset of the destination tree)
    (["a.txt"], "/out", {"out": "f:A"}),
    (["a.txt"], "/out/", {"out": "d", "out/a.txt": "f:A"}),
    (["a.txt"], "/deep/er/out", {"deep": "d", "deep/er": "d", "deep/er/out": "f:A"}),
    (["dir"], "/app", {"app/x.txt": "f:X", "app/sub/y.md": "f:Y", "app/.hidden": "f:H"}),
    (["dir/"], "/app/", {"app/x.txt": "f:X", "app/sub/y.md": "f:Y"}),
    (["./dir/../a.txt"], "/out", {"out": "f:A"}),
    (["../../a.txt"], "/out", {"out": "f:A"}),
    (["/a.txt"], "/out", {"out": "f:A"}),
    (["a.txt", "b.txt"], "/many/", {"many/a.txt": "f:A", "many/b.txt": "f:B"}),
    (["*.txt"], "/w/", {"w/a.txt": "f:A", "w/b.txt": "f:B", "w/arr[0].txt": "f:ARR"}),
    (["?.md"], "/w/", {"w/c.md": "f:C"}),
    (["[ab].txt"], "/w/", {"w/a.txt": "f:A", "w/b.txt": "f:B"}),
    (["[^a].txt"], "/w/", {"w/b.txt": "f:B"}),
    (["arr[[]0].txt"], "/w/", {"w/arr[0].txt": "f:ARR"}),
    (["d*"], "/w/", {"w/x.txt": "f:X", "w/sub/y.md": "f:Y"}),  # a matched dir: its contents
    (["*/*.md"], "/w/", {"w/y.md": "f:Y"} if False else {}),  # dir/sub/y.md is 3 deep
    (["dir/*/*.md"], "/w/", {"w/y.md": "f:Y"}),
    (["nomatch*"], "/w/", {"w": "d"}),  # BuildKit: AllowEmptyWildcard
    (["link-to-a"], "/out", {"out": "f:A"}),  # FollowSymlinks for the named source
    (["link-to-dir"], "/app/", {"app/x.txt": "f:X"}),
    (["empty"], "/e", {"e": "d"}),
    (["."], "/all/", {"all/a.txt": "f:A", "all/link-to-a": "l:a.txt", "all/dir/x.txt": "f:X"}),
]


@pytest.mark.parametrize(("sources", "dest", "expected"), CASES)
def test_copy_rules(
    tmp_path: Path, sources: list[str], dest: str, expected: dict[str, str]
) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, sources, dest)
    tree = describe(dst)
    for path, kind in expected.items():
        assert tree.get(path) == kind, (path, tree)


def test_wildcard_only_copies_what_matches(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["*.md"], "/w/")
    assert describe(dst / "w") == {"c.md": "f:C"}


@pytest.mark.parametrize(
    ("sources", "dest", "message"),
    [
        (["a.txt", "b.txt"], "/notdir", "more than one source file"),
        (["*.txt"], "/notdir", "must be a directory and end with a /"),
        (["missing.txt"], "/x", '"/missing.txt": not found'),
        (["nodir/*.txt"], "/x/", '"/nodir/*.txt": not found'),
        (["dir"], "/a.txt", "cannot copy to non-directory"),
    ],
)
def test_copy_errors(tmp_path: Path, sources: list[str], dest: str, message: str) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {"a.txt": "old"})
    with pytest.raises(FileOpError) as info:
        copy_files(src, dst, sources, dest, instruction="COPY " + " ".join([*sources, dest]))
    assert message in str(info.value)
    assert str(info.value).startswith("COPY ")


def test_file_onto_existing_directory_goes_inside(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {"etc/": None})
    copy_files(src, dst, ["a.txt"], "/etc")
    assert (dst / "etc" / "a.txt").read_text() == "A"


def test_wildcard_several_matches_into_existing_directory(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {"etc/": None})
    copy_files(src, dst, ["[ab].txt"], "/etc")
    assert sorted(os.listdir(dst / "etc")) == ["a.txt", "b.txt"]


def test_file_cannot_replace_directory(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"x": "file"})
    dst = make_tree(tmp_path / "dst", {"d/x/keep": "k"})
    with pytest.raises(FileOpError, match="cannot replace to directory"):
        copy_files(src, dst, ["."], "/d/")


def test_directory_merges_and_overwrites_files(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a": "new", "sub/b": "new-b"})
    dst = make_tree(tmp_path / "dst", {"app/a": "old", "app/keep": "k", "app/sub/c": "c"})
    copy_files(src, dst, ["."], "/app")
    assert describe(dst / "app") == {
        "a": "f:new",
        "keep": "f:k",
        "sub": "d",
        "sub/b": "f:new-b",
        "sub/c": "f:c",
    }


def test_symlink_in_destination_replaced_not_followed_for_nested_file(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "data"})
    outside = tmp_path / "outside"
    outside.write_text("precious")
    dst = make_tree(tmp_path / "dst", {"app/": None})
    os.symlink(str(outside), dst / "app" / "f")
    copy_files(src, dst, ["f"], "/app/")
    assert outside.read_text() == "precious"
    assert (dst / "app" / "f").read_text() == "data" and not (dst / "app" / "f").is_symlink()


@pytest.mark.root
def test_metadata_preserved_and_owner_rules(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"bin/tool": "#!", "conf": "c"})
    os.chmod(src / "bin" / "tool", 0o4751)
    os.chmod(src / "bin", 0o750)
    os.utime(src / "conf", ns=(1_000_000_000, 1_234_567_890_123))
    os.chown(src / "conf", 1234, 5678)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["."], "/stage/")
    st = os.stat(dst / "stage" / "conf")
    assert st.st_mtime_ns == 1_234_567_890_123
    assert (st.st_uid, st.st_gid) == (1234, 5678)  # COPY --from a stage keeps owners
    assert stat.S_IMODE(os.stat(dst / "stage" / "bin" / "tool").st_mode) == 0o4751
    assert stat.S_IMODE(os.stat(dst / "stage" / "bin").st_mode) == 0o750
    copy_files(src, dst, ["."], "/ctx/", reset_owner=True)
    st = os.stat(dst / "ctx" / "conf")
    assert (st.st_uid, st.st_gid) == (0, 0)  # the context arrives as 0:0


@pytest.mark.root
def test_created_parents_get_chown_and_0755(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "x"})
    dst = make_tree(tmp_path / "dst", {})
    os.umask(0o077)
    try:
        copy_files(src, dst, ["f"], "/a/b/f", chown=ResolvedOwner(1000, 1001))
    finally:
        os.umask(0o022)
    for rel in ("a", "a/b", "a/b/f"):
        st = os.lstat(dst / rel)
        assert (st.st_uid, st.st_gid) == (1000, 1001), rel
    assert stat.S_IMODE(os.stat(dst / "a").st_mode) == 0o755
    assert os.stat(dst).st_uid == 0  # an existing directory is not chowned


def test_source_date_epoch_dates_created_directories(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "x"})
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["f"], "/new/dir/", source_date_epoch=1_700_000_000)
    assert os.stat(dst / "new").st_mtime == 1_700_000_000
    assert os.stat(dst / "new" / "dir").st_mtime == 1_700_000_000


@pytest.mark.parametrize(
    ("chmod", "file_mode", "dir_mode"),
    [
        ("755", 0o755, 0o755),
        ("0640", 0o640, 0o640),
        ("+x", 0o755, 0o755),
        ("u=rwX,go=rX", 0o644, 0o755),
        ("g=u", 0o664, 0o775),
        ("o-r", 0o640, 0o751),
    ],
)
@pytest.mark.root
def test_chmod(tmp_path: Path, chmod: str, file_mode: int, dir_mode: int) -> None:
    src = make_tree(tmp_path / "src", {"d/f": "x"})
    os.chmod(src / "d" / "f", 0o644)
    os.chmod(src / "d", 0o755)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["."], "/o/", chmod=chmod)
    assert stat.S_IMODE(os.stat(dst / "o" / "d" / "f").st_mode) == file_mode
    assert stat.S_IMODE(os.stat(dst / "o" / "d").st_mode) == dir_mode
    assert stat.S_IMODE(os.stat(dst / "o").st_mode) == 0o755  # created by MkdirAll


def test_octal_chmod_sets_the_whole_mode_special_bits_included(tmp_path: Path) -> None:
    # BuildKit since tonistiigi/fsutil#168 (moby/buildkit#3920): --chmod=4755 gives setuid,
    # and --chmod=700 on a setuid source clears it.
    src = make_tree(tmp_path / "src", {"f": "x", "g": "y"})
    os.chmod(src / "f", 0o4755)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["f"], "/f", chmod="700")
    assert stat.S_IMODE(os.stat(dst / "f").st_mode) == 0o700
    copy_files(src, dst, ["g"], "/g", chmod="4755")
    assert stat.S_IMODE(os.stat(dst / "g").st_mode) == 0o4755


@pytest.mark.parametrize("bad", ["8", "77777", "u=rwz", "x+"])
def test_bad_chmod(tmp_path: Path, bad: str) -> None:
    src = make_tree(tmp_path / "src", {"f": "x"})
    with pytest.raises(FileOpError, match="invalid chmod parameter"):
        copy_files(src, make_tree(tmp_path / "dst", {}), ["f"], "/f", chmod=bad)


@pytest.mark.root
def test_symlinks_inside_directories_stay_links(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"d/target": "t", "d/rel": "->target", "d/abs": "->/etc"})
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["d"], "/o/", chown=ResolvedOwner(7, 8))
    assert os.readlink(dst / "o" / "rel") == "target"
    assert os.readlink(dst / "o" / "abs") == "/etc"
    assert os.lstat(dst / "o" / "abs").st_uid == 7


def test_hardlinks_within_a_source_are_preserved(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"d/one": "same"})
    os.link(src / "d" / "one", src / "d" / "two")
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["d"], "/o/")
    a, b = os.stat(dst / "o" / "one"), os.stat(dst / "o" / "two")
    assert a.st_ino == b.st_ino and a.st_nlink == 2


def test_fifo_is_copied(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"d/": None})
    os.mkfifo(src / "d" / "pipe")
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["d"], "/o/")
    assert stat.S_ISFIFO(os.lstat(dst / "o" / "pipe").st_mode)


def test_xattrs_are_copied(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"f": "x"})
    try:
        os.setxattr(src / "f", "user.note", b"hello")
    except OSError as exc:
        pytest.fail(
            f"missing requirement: user xattrs on the temporary file system ({exc})", pytrace=False
        )
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["f"], "/f")
    assert os.getxattr(dst / "f", "user.note") == b"hello"


def test_copy_into_the_root_itself(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"etc/app.conf": "c", "top": "t"})
    dst = make_tree(tmp_path / "dst", {"etc/passwd": "p"})
    os.utime(src, ns=(5_000_000_000, 5_000_000_000))
    copy_files(src, dst, ["."], "/")
    assert describe(dst) == {"etc": "d", "etc/passwd": "f:p", "etc/app.conf": "f:c", "top": "f:t"}
    assert os.stat(dst).st_mtime == 5  # the top directory takes the source's times only


def test_path_through_a_file_is_not_found(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": "A"})
    with pytest.raises(FileOpError, match='"/a.txt/b": not found'):
        copy_files(src, make_tree(tmp_path / "dst", {}), ["a.txt/b"], "/x")
