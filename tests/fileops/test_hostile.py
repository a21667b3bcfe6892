"""Hostile destinations and sources: symlinks to / or ../.. never lead writes out of the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polybuild.fileops import FileOpError, add_url, copy_files, make_dir
from tests.fileops.trees import make_tree


def snapshot(path: Path) -> dict[str, bytes | str]:
    out: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            out[str(p)] = (
                os.readlink(p) if p.is_symlink() else (b"" if p.is_dir() else p.read_bytes())
            )
    return out


@pytest.fixture
def arena(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(source, destination root, host dir beside them that must never change)."""
    host = make_tree(tmp_path / "host", {"etc/passwd": "host-passwd", "victim": "precious"})
    src = make_tree(tmp_path / "src", {"passwd": "evil", "d/file": "x"})
    dest = make_tree(tmp_path / "dest", {"real/": None})
    os.symlink("/", dest / "etc")  # /etc -> /
    os.symlink("../../..", dest / "up")  # climbs far above the root
    os.symlink(str(host), dest / "abs")  # a host path: inside the root it means /<host path>
    os.symlink("../host/victim", dest / "real" / "victim")
    return src, dest, host


@pytest.mark.parametrize(
    ("sources", "dest"),
    [
        (["passwd"], "/etc/passwd"),
        (["passwd"], "/up/up/etc/passwd"),
        (["passwd"], "/up/"),
        (["d"], "/etc/"),
        (["d"], "/up/x/"),
        (["passwd"], "/abs/victim"),
        (["passwd"], "/real/victim"),
        (["d"], "/../../../../tmp/escape/"),
    ],
)
def test_copy_never_writes_outside(
    arena: tuple[Path, Path, Path], sources: list[str], dest: str
) -> None:
    src, root, host = arena
    before = snapshot(host)
    outside_before = set(os.listdir(root.parent))
    copy_files(src, root, sources, dest)
    assert snapshot(host) == before
    assert set(os.listdir(root.parent)) == outside_before


def test_symlinked_destination_resolves_inside_root(arena: tuple[Path, Path, Path]) -> None:
    src, root, _ = arena
    copy_files(src, root, ["passwd"], "/etc/passwd")
    assert (root / "passwd").read_text() == "evil"  # /etc -> / means ROOT/passwd


def test_source_cannot_escape_its_root(tmp_path: Path) -> None:
    make_tree(tmp_path / "secret", {"key": "SECRET"})
    src = make_tree(tmp_path / "ctx", {"ok": "fine"})
    os.symlink("../secret/key", src / "leak")
    os.symlink("/", src / "rootlink")
    dest = make_tree(tmp_path / "dest", {})
    with pytest.raises(FileOpError, match="not found"):
        copy_files(src, dest, ["../secret/key"], "/k")
    with pytest.raises(FileOpError, match="not found"):
        copy_files(src, dest, ["leak"], "/k")  # followed inside the context: /secret/key
    copy_files(src, dest, ["rootlink/ok"], "/k")
    assert (dest / "k").read_text() == "fine"


def test_workdir_through_hostile_links(arena: tuple[Path, Path, Path]) -> None:
    _, root, host = arena
    before = snapshot(host)
    make_dir(root, "/up/up/work")
    make_dir(root, "/etc/app")
    assert (root / "work").is_dir() and (root / "app").is_dir()
    assert snapshot(host) == before


def test_mkdir_through_a_file_fails(tmp_path: Path) -> None:
    root = make_tree(tmp_path / "root", {"file": "x"})
    with pytest.raises(FileOpError, match="WORKDIR /file/sub"):
        make_dir(root, "/file/sub", instruction="WORKDIR /file/sub")


def test_malformed_git_references_are_refused_before_any_fetch(tmp_path: Path) -> None:
    # ADD checks git references out (tests/integration/test_context_sources.py); a bad
    # query is refused as BuildKit refuses it, before git runs.
    with pytest.raises(FileOpError, match="unexpected query 'depth'"):
        add_url("https://example.invalid/r.git?depth=1", tmp_path, "/src/", instruction="ADD")
    assert list(tmp_path.iterdir()) == []
