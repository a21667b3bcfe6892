"""The history store: refs, atomic private files, the cap, corrupt records, ref lookup."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from polybuild.errors import PolybuildError, UsageError
from polybuild.history import (
    COMPLETED,
    ERROR,
    BuildRecord,
    HistoryStore,
    LogChunk,
    StepRecord,
    new_ref,
)
from polybuild.history.record import decode, encode


def record(started: float, *, status: str = COMPLETED, name: str = "ctx") -> BuildRecord:
    step = StepRecord(
        "sha256:aa",
        "[2/2] RUN true",
        started,
        started + 1,
        platform="linux/arm64",
        node="this machine",
        emulated=True,
        logs=(LogChunk(started + 0.5, 1, b"out\n"),),
    )
    return BuildRecord(
        ref=new_ref(),
        name=name,
        builder="default",
        started=started,
        completed=started + 2,
        status=status,
        steps=(step,),
    )


def test_refs_are_buildkits_shape() -> None:
    refs = {new_ref() for _ in range(200)}
    assert len(refs) == 200
    assert all(re.fullmatch(r"[0-9a-z]{25}", ref) for ref in refs)


def test_a_record_round_trips_through_json() -> None:
    original = record(1000.0, status=ERROR)
    assert decode(encode(original)) == original


def test_records_are_private_files_written_whole(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path / "root")
    saved = record(1000.0)
    store.save(saved)
    directory = tmp_path / "root" / "history"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "root").stat().st_mode) == 0o700
    files = list(directory.iterdir())
    assert [f.name for f in files] == [f"{saved.ref}.json"]  # no temp file left
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert store.records() == [saved]


def test_only_the_newest_records_are_kept(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path, limit=3)
    saved = [record(1000.0 + i) for i in range(5)]
    for item in saved:
        store.save(item)
    assert [r.ref for r in store.records()] == [r.ref for r in reversed(saved[2:])]
    assert len(list((tmp_path / "history").iterdir())) == 3
    assert store.prune(1) == [saved[3].ref, saved[2].ref]


def test_a_corrupt_record_is_skipped_with_a_warning(tmp_path: Path) -> None:
    warnings: list[str] = []
    store = HistoryStore(tmp_path, warn=warnings.append)
    good = record(1000.0)
    store.save(good)
    broken = tmp_path / "history" / f"{new_ref()}.json"
    broken.write_bytes(encode(record(2000.0))[:40])
    wrong = tmp_path / "history" / f"{new_ref()}.json"
    wrong.write_text('{"ref": "x", "status": "completed"}')
    assert store.records() == [good]
    assert len(warnings) == 2 and all("unreadable build record" in w for w in warnings)
    assert store.find("") == good


def test_refs_offsets_and_prefixes(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    older, newer = record(1000.0), record(2000.0)
    store.save(older)
    store.save(newer)
    assert store.find("") == newer
    assert store.find("^0") == newer
    assert store.find("^1") == older
    assert store.find(older.ref) == older
    assert store.find(older.ref[:10]) == older
    with pytest.raises(PolybuildError, match='no record found for ref "\\^2"') as found:
        store.find("^2")
    assert not isinstance(found.value, UsageError)  # exit 1, as buildx
    with pytest.raises(PolybuildError, match="no completed build found with offset 3"):
        store.find("^5")
    with pytest.raises(UsageError, match='invalid offset "\\^x"'):
        store.find("^x")
    with pytest.raises(PolybuildError, match="no record found for ref"):
        store.find("zzzz")


def test_no_records(tmp_path: Path) -> None:
    with pytest.raises(PolybuildError, match="^no records found$"):
        HistoryStore(tmp_path).find("")


def test_remove_and_clear(tmp_path: Path) -> None:
    store = HistoryStore(tmp_path)
    first, second, third = record(1.0), record(2.0), record(3.0)
    for item in (first, second, third):
        store.save(item)
    assert store.remove(["^0"]) == [third.ref]
    assert [r.ref for r in store.records()] == [second.ref, first.ref]
    assert sorted(store.clear()) == sorted([first.ref, second.ref])
    assert store.records() == []


def test_a_build_of_a_remote_context_is_named_after_the_url() -> None:
    from polybuild.history.naming import build_name

    url = "https://git.example/team/app.git#main"
    # make_record joins a remote context with "Dockerfile"; buildx names the build the URL
    assert build_name(url, os.path.join(url, "Dockerfile")) == url
