"""COPY --parents (with and without the ./ pivot) and --exclude / .dockerignore filtering."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.fileops import FileOpError, copy_files
from tests.fileops.trees import describe, make_tree

SOURCE = {
    "x/a.txt": "A",
    "x/b.md": "B",
    "x/y/c.txt": "C",
    "x/y/z/d.txt": "D",
    "w/e.txt": "E",
    "top.txt": "T",
    "node_modules/m.js": "M",
}


def files(tree: dict[str, str]) -> set[str]:
    return {path for path, kind in tree.items() if kind.startswith("f:")}


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (["x/y/c.txt"], {"x/y/c.txt"}),
        (["x/./y/c.txt"], {"y/c.txt"}),
        (["*/*.txt"], {"x/a.txt", "w/e.txt"}),
        (["x/y"], {"x/y/c.txt", "x/y/z/d.txt"}),
        (["x/**/*.txt"], {"x/a.txt", "x/y/c.txt", "x/y/z/d.txt"}),
        (["./x/./y"], {"y/c.txt", "y/z/d.txt"}),
    ],
)
def test_parents(tmp_path: Path, sources: list[str], expected: set[str]) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, sources, "/out/", parents=True)
    assert files(describe(dst / "out")) == expected


def test_parents_missing_path_is_an_error(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    with pytest.raises(FileOpError, match=r'"/x/nope.txt": not found'):
        copy_files(src, make_tree(tmp_path / "dst", {}), ["x/nope.txt"], "/o/", parents=True)


@pytest.mark.parametrize(
    ("sources", "exclude", "expected"),
    [
        (["x"], ["*.md"], {"a.txt", "y/c.txt", "y/z/d.txt"}),
        (["x"], ["y"], {"a.txt", "b.md"}),
        (["x"], ["y", "!y/z/d.txt"], {"a.txt", "b.md", "y/z/d.txt"}),
        (["x"], ["**/*.txt"], {"b.md"}),
        # top-level matches are filtered by their name, contents relative to each match
        (["*"], ["*.txt"], {"b.md", "m.js", "y/c.txt", "y/z/d.txt"}),
        (
            ["."],
            ["node_modules"],
            {"top.txt", "x/a.txt", "x/b.md", "x/y/c.txt", "x/y/z/d.txt", "w/e.txt"},
        ),
    ],
)
def test_exclude(
    tmp_path: Path, sources: list[str], exclude: list[str], expected: set[str]
) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, sources, "/out/", exclude=exclude)
    assert files(describe(dst / "out")) == expected


def test_excluded_directory_is_not_created(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["x"], "/out/", exclude=["y"])
    assert not (dst / "out" / "y").exists()


def test_dockerignore_hides_context_paths(tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", SOURCE)
    dst = make_tree(tmp_path / "dst", {})
    copy_files(src, dst, ["."], "/out/", ignore=["node_modules", "x/y"])
    assert files(describe(dst / "out")) == {"top.txt", "x/a.txt", "x/b.md", "w/e.txt"}
    with pytest.raises(FileOpError, match="not found"):
        copy_files(src, dst, ["node_modules/m.js"], "/o", ignore=["node_modules"])
