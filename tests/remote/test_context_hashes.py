"""The client's remembered context digests: an unchanged file is not read again, a changed
one is (even with its size and mtime put back), a file changed just before it was hashed is
never remembered (git's racy rule), and the manifest names no path of the client's."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from polybuild.imagebuild import context_hashes
from polybuild.imagebuild.context_hashes import ContextHashes
from polybuild.imagebuild.remote_context import context_key, context_manifest

OLD = 1_000_000_000  # 2001, in seconds


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def digest_of(root: Path, context: Path, name: str) -> str:
    entries, _ = context_manifest(context, (), root)
    (found,) = (e.digest for e in entries if e.path == name)
    return found


@pytest.fixture
def later(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock a minute on: files written by the test are no longer racy."""
    now = context_hashes.time.time_ns() + 60 * 10**9
    monkeypatch.setattr(context_hashes.time, "time_ns", lambda: now)


def cache_file(root: Path) -> Path:
    (path,) = (root / context_hashes.HASHES_DIR).iterdir()
    return path


@pytest.mark.usefixtures("later")
def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    root, context = tmp_path / "root", tmp_path / "ctx"
    context.mkdir()
    (context / "f").write_bytes(b"content")
    assert digest_of(root, context, "f") == sha(b"content")
    # Lie in the remembered digest: a build that used it did not read the file.
    text = cache_file(root).read_text()
    cache_file(root).write_text(text.replace(sha(b"content"), sha(b"remembered")))
    assert digest_of(root, context, "f") == sha(b"remembered")


@pytest.mark.usefixtures("later")
def test_a_changed_file_is_read_again_even_with_its_size_and_mtime_put_back(
    tmp_path: Path,
) -> None:
    root, context = tmp_path / "root", tmp_path / "ctx"
    context.mkdir()
    (context / "f").write_bytes(b"content")
    os.utime(context / "f", (OLD, OLD))
    assert digest_of(root, context, "f") == sha(b"content")
    (context / "f").write_bytes(b"CONTENT")
    os.utime(context / "f", (OLD, OLD))
    assert digest_of(root, context, "f") == sha(b"CONTENT")


def test_a_file_changed_just_before_it_was_hashed_is_not_remembered(tmp_path: Path) -> None:
    root, context = tmp_path / "root", tmp_path / "ctx"
    context.mkdir()
    (context / "new").write_bytes(b"just written")
    assert digest_of(root, context, "new") == sha(b"just written")
    assert (
        not (root / context_hashes.HASHES_DIR).exists() or "new" not in cache_file(root).read_text()
    )


def test_without_a_data_root_nothing_is_kept(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    hashes = ContextHashes(None, tmp_path)
    assert hashes.digest(tmp_path / "f", "f", os.lstat(tmp_path / "f")) == sha(b"x")
    hashes.save()


def test_the_context_key_is_a_hash_of_which_context_of_which_client(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    key = context_key(tmp_path / "a", tmp_path / "root")
    assert len(key) == 64 and str(tmp_path) not in key
    assert key == context_key(tmp_path / "a", tmp_path / "root")
    assert key != context_key(tmp_path / "b", tmp_path / "root")
    assert key != context_key(tmp_path / "a", tmp_path / "other-root")
