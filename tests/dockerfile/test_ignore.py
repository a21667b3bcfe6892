"""`.dockerignore` reading and matching (moby's semantics: `**`, `!` exceptions, last wins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.dockerfile.ignore import IgnoreMatcher, ignore_file_for, read_patterns

PATTERNS = read_patterns(
    "# comment\n\n/node_modules\n*.log\n!keep.log\n**/*.tmp\ndocs/**\n!docs/README.md\n ./build/ \n"
)


def test_read_patterns_cleans_and_drops_comments() -> None:
    assert PATTERNS == (
        "node_modules", "*.log", "!keep.log", "**/*.tmp", "docs/**", "!docs/README.md", "build",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("path", "excluded"),
    [
        ("node_modules", True),
        ("node_modules/pkg/index.js", True),
        ("src/node_modules", False),
        ("error.log", True),
        ("keep.log", False),
        ("sub/error.log", False),
        ("a/b/c.tmp", True),
        ("c.tmp", True),
        ("docs/guide.md", True),
        ("docs/README.md", False),
        ("build/out.o", True),
        ("main.go", False),
    ],
)
def test_matching(path: str, excluded: bool) -> None:
    assert IgnoreMatcher(PATTERNS).excluded(path) is excluded


def test_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text("a\n")
    assert ignore_file_for(tmp_path, tmp_path / "Dockerfile") == tmp_path / ".dockerignore"
    (tmp_path / "web.Dockerfile.dockerignore").write_text("b\n")
    chosen = ignore_file_for(tmp_path, tmp_path / "web.Dockerfile")
    assert chosen == tmp_path / "web.Dockerfile.dockerignore"
    assert ignore_file_for(tmp_path / "missing") is None
