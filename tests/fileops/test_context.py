"""Context listing and content checksums: they change when and only when copied files change."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from polybuild.fileops import FileOpError, content_checksum, list_context_files
from tests.fileops.trees import make_tree

CONTEXT = {
    "app/main.py": "print(1)",
    "app/lib/util.py": "x = 1",
    "docs/readme.md": "docs",
    "node_modules/big.js": "js",
    "Dockerfile": "FROM scratch",
    "link": "->app/main.py",
}


def test_list_context_files_honours_dockerignore(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", CONTEXT)
    listed = list_context_files(ctx, ["node_modules", "docs/*.md", "!docs/keep.md"])
    assert "node_modules" not in listed and "node_modules/big.js" not in listed
    assert "docs/readme.md" not in listed and "docs" in listed
    assert {"app", "app/lib", "app/lib/util.py", "app/main.py", "Dockerfile", "link"} <= set(listed)


def _sum(ctx: Path, sources: list[str], **kw: object) -> str:
    return content_checksum(ctx, sources, **kw)  # type: ignore[arg-type]


def test_checksum_changes_only_with_read_content(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", CONTEXT)
    base = _sum(ctx, ["app"])
    assert _sum(ctx, ["app"]) == base
    (ctx / "docs" / "readme.md").write_text("changed")  # not read by COPY app
    assert _sum(ctx, ["app"]) == base
    os.utime(ctx / "app" / "main.py", (1, 1))  # mtime only
    assert _sum(ctx, ["app"]) == base
    (ctx / "app" / "main.py").write_text("print(2)")
    changed = _sum(ctx, ["app"])
    assert changed != base
    os.chmod(ctx / "app" / "lib" / "util.py", 0o755)
    assert _sum(ctx, ["app"]) != changed
    (ctx / "app" / "new.txt").write_text("")
    assert _sum(ctx, ["app"]) not in (base, changed)


def test_checksum_symlink_target_and_rename(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", CONTEXT)
    base = _sum(ctx, ["."])
    os.unlink(ctx / "link")
    os.symlink("app/lib/util.py", ctx / "link")
    assert _sum(ctx, ["."]) != base
    again = _sum(ctx, ["."])
    os.rename(ctx / "Dockerfile", ctx / "Containerfile")
    assert _sum(ctx, ["."]) != again


def test_checksum_honours_exclude_and_ignore(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", CONTEXT)
    base = _sum(ctx, ["."], exclude=["docs"], ignore_patterns=["node_modules"])
    (ctx / "docs" / "readme.md").write_text("changed")
    (ctx / "node_modules" / "big.js").write_text("changed")
    assert _sum(ctx, ["."], exclude=["docs"], ignore_patterns=["node_modules"]) == base
    assert _sum(ctx, ["."]) != base


def test_checksum_wildcards_and_missing(tmp_path: Path) -> None:
    ctx = make_tree(tmp_path / "ctx", CONTEXT)
    base = _sum(ctx, ["app/*.py"])
    (ctx / "app" / "lib" / "util.py").write_text("deeper, not matched")
    assert _sum(ctx, ["app/*.py"]) == base
    (ctx / "app" / "other.py").write_text("matched")
    assert _sum(ctx, ["app/*.py"]) != base
    with pytest.raises(FileOpError, match='"/nope": not found'):
        _sum(ctx, ["nope"])


def test_checksum_speed_on_10000_files(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    for d in range(100):
        folder = ctx / f"d{d:03}"
        folder.mkdir(parents=True)
        for f in range(100):
            (folder / f"f{f:03}.txt").write_bytes(f"{d}-{f}\n".encode() * 8)
    start = time.perf_counter()
    first = _sum(ctx, ["."])
    cold = time.perf_counter() - start
    start = time.perf_counter()
    assert _sum(ctx, ["."]) == first
    warm = time.perf_counter() - start
    print(f"\ncontent_checksum, 10,000 files: cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms")


def test_hash_cache_survives_a_restart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from polybuild.fileops import context

    monkeypatch.setattr(context, "_HASHES", {})
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "big.bin").write_bytes(b"x" * 300_000)
    first = context.content_checksum(ctx, ["."])
    cache_file = tmp_path / "hashes"
    context.save_hash_cache(cache_file)
    monkeypatch.setattr(context, "_HASHES", {})
    context.load_hash_cache(cache_file)
    assert len(context._HASHES) == 1

    real_open = os.open

    def no_reads(path: str | Path, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_PATH:  # path lookups by fd: nothing can be read through them
            return real_open(path, flags, *args, **kwargs)
        raise AssertionError("the file was read again")

    monkeypatch.setattr(context.os, "open", no_reads)
    assert context.content_checksum(ctx, ["."]) == first
