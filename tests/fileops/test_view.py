"""The context as BuildKit's daemon holds it: ignored paths are absent however they are reached.

Each bypass of .dockerignore through a symlink (a link to an ignored file, a wildcard that
matches such a link, a link to an ignored directory, links at any depth, links out of the
context) must find nothing, both for the copy and for its cache key.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polybuild.dockerfile.ignore import IgnoreMatcher
from polybuild.fileops import FileOpError, content_checksum, copy_files
from polybuild.fileops.context import hidden_paths
from polybuild.fileops.view import SourceView
from tests.fileops.trees import describe, make_tree

SECRET = "TOP-SECRET-BYTES"
IGNORE = ("secret.env", "secrets", "*.pem")


def all_bytes(root: Path) -> bytes:
    """Every file's content and every link target below `root`, concatenated."""
    out = b""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            if path.is_symlink():
                out += os.readlink(path).encode()
            elif path.is_file():
                out += path.read_bytes()
    return out


@pytest.fixture
def ctx(tmp_path: Path) -> Path:
    """A context with ignored secrets and links to them, plus a secret outside the context."""
    outside = make_tree(tmp_path / "outside", {"key": SECRET})
    root = make_tree(
        tmp_path / "ctx",
        {
            "app/main.py": "print(1)",
            "secret.env": SECRET,
            "secrets/key": SECRET,
            "server.pem": SECRET,
            "alias": "->secret.env",
            "alias2": "->alias",  # a chain of links
            "absalias": "->/secret.env",  # absolute: starts at the context root
            "linkdir": "->secrets",
            "app/nested": "->../alias",
            "deep/er/link": "->../../secrets/key",
            "pemlink": "->server.pem",
            "escape": "->../outside/key",
            "escape_far": "->../../../../../outside/key",
            "escape_abs": f"->{outside / 'key'}",
            "escape_root": "->//etc/hostname",
        },
    )
    return root


BYPASSES = [
    ["alias"],
    ["alias2"],
    ["absalias"],
    ["ali*"],
    ["linkdir/key"],
    ["linkdir"],
    ["linkdir/*"],
    ["app/nested"],
    ["app/nest*"],
    ["deep/er/link"],
    ["deep/*/link"],
    ["pemlink"],
    ["escape"],
    ["escape_far"],
    ["escape_abs"],
    ["escape_root"],
]


@pytest.mark.parametrize("sources", BYPASSES, ids=lambda s: s[0])
def test_copy_never_reaches_an_ignored_path(ctx: Path, tmp_path: Path, sources: list[str]) -> None:
    dest = make_tree(tmp_path / "dest", {})
    line = f"COPY {sources[0]} /x/"
    with pytest.raises(FileOpError, match="not found") as caught:
        copy_files(ctx, dest, sources, "/x/", ignore=IGNORE, reset_owner=True, instruction=line)
    assert str(caught.value).startswith(f"{line}: ")
    assert SECRET.encode() not in all_bytes(dest)


@pytest.mark.parametrize("sources", BYPASSES, ids=lambda s: s[0])
def test_checksum_never_reaches_an_ignored_path(ctx: Path, sources: list[str]) -> None:
    with pytest.raises(FileOpError, match="not found") as caught:
        content_checksum(ctx, sources, ignore_patterns=IGNORE, instruction="COPY it /x/")
    assert str(caught.value).startswith("COPY it /x/: ")


def test_without_dockerignore_links_are_followed_inside_the_context(
    ctx: Path, tmp_path: Path
) -> None:
    dest = make_tree(tmp_path / "dest", {})
    copy_files(ctx, dest, ["alias", "linkdir/key", "app/nested", "absalias"], "/x/")
    assert describe(dest / "x") == {
        k: f"f:{SECRET}" for k in ("alias", "key", "nested", "absalias")
    }
    for escaping in ("escape", "escape_far", "escape_abs", "escape_root"):
        with pytest.raises(FileOpError, match="not found"):
            copy_files(ctx, dest, [escaping], "/y")


def test_links_inside_a_copied_directory_stay_links(ctx: Path, tmp_path: Path) -> None:
    dest = make_tree(tmp_path / "dest", {})
    copy_files(ctx, dest, ["."], "/x/", ignore=IGNORE)
    seen = describe(dest / "x")
    assert seen["alias"] == "l:secret.env" and "secret.env" not in seen  # dangling, as BuildKit
    assert seen["linkdir"] == "l:secrets" and "secrets" not in seen
    assert "server.pem" not in seen
    assert SECRET.encode() not in all_bytes(dest)


def test_checksum_of_a_directory_ignores_what_its_links_point_to(ctx: Path) -> None:
    before = content_checksum(ctx, ["."], ignore_patterns=IGNORE)
    (ctx / "secret.env").write_text("changed")
    (ctx / "secrets" / "key").write_text("changed")
    assert content_checksum(ctx, ["."], ignore_patterns=IGNORE) == before


def test_reincluded_paths_exist_through_links(tmp_path: Path) -> None:
    ctx = make_tree(
        tmp_path / "ctx",
        {
            "secrets/key": SECRET,
            "secrets/pub": "public",
            "linkdir": "->secrets",
            "pl": "->secrets/pub",
        },
    )
    ignore = ("secrets", "!secrets/pub")
    dest = make_tree(tmp_path / "dest", {})
    copy_files(ctx, dest, ["linkdir"], "/a/", ignore=ignore)
    copy_files(ctx, dest, ["pl", "linkdir/pub"], "/b/", ignore=ignore)
    copy_files(ctx, dest, ["sec*"], "/c/", ignore=ignore)
    assert describe(dest / "a") == {"pub": "f:public"}
    assert describe(dest / "b") == {"pl": "f:public", "pub": "f:public"}
    assert describe(dest / "c") == {"pub": "f:public"}
    with pytest.raises(FileOpError, match="not found"):
        copy_files(ctx, dest, ["linkdir/key"], "/d", ignore=ignore)
    assert SECRET.encode() not in all_bytes(dest)


def test_parents_pivot_through_a_link_to_an_ignored_dir(ctx: Path, tmp_path: Path) -> None:
    dest = make_tree(tmp_path / "dest", {})
    with pytest.raises(FileOpError, match="not found"):
        copy_files(ctx, dest, ["linkdir/./key"], "/x/", parents=True, ignore=IGNORE)
    copy_files(ctx, dest, ["*"], "/y/", parents=True, ignore=IGNORE)
    assert SECRET.encode() not in all_bytes(dest)


def test_view_lookup_and_exists(ctx: Path) -> None:
    view = SourceView(ctx, IgnoreMatcher(IGNORE))
    assert view.lookup("app/main.py") == ("app", "main.py")
    assert view.lookup("alias", follow_last=False) == ("alias",)
    with pytest.raises(FileOpError, match="not found"):
        view.lookup("linkdir/../app/main.py")  # the way leads through an ignored directory
    assert view.exists("alias") and view.exists("app/nested")
    assert not view.exists("secret.env") and not view.exists("secrets/key")
    with pytest.raises(FileOpError, match='"/alias": not found'):
        view.lookup("alias")
    with pytest.raises(FileOpError, match='"/app/nested": not found'):
        view.lookup("/app/nested")
    unfiltered = SourceView(ctx)
    assert unfiltered.lookup("app/nested") == ("secret.env",)
    assert unfiltered.lookup("linkdir/../app/./main.py") == ("app", "main.py")
    assert unfiltered.lookup("escape_abs", follow_last=False) == ("escape_abs",)
    with pytest.raises(FileOpError, match="not found"):
        unfiltered.lookup("escape_root")  # //etc/hostname is <context>/etc/hostname


def test_view_symlink_loop(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", {"a": "->b", "b": "->a"})
    with pytest.raises(FileOpError, match="too many levels of symbolic links"):
        SourceView(ctx).lookup("a")


def test_bind_mount_view_hides_targets_not_links(ctx: Path) -> None:
    hidden = set(hidden_paths(ctx, IGNORE))
    assert {"secret.env", "secrets", "server.pem"} <= hidden
    assert not hidden & {"alias", "linkdir", "app/nested", "pemlink"}
