"""The recording hook: what a record takes from a request (never a secret value), and a
record that cannot be written never fails the build."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from polybuild.builders import Builder
from polybuild.history import CANCELED, COMPLETED, ERROR, HistoryStore
from polybuild.history.record import encode
from polybuild.imagebuild.build_history import make_record, recording
from polybuild.imagebuild.request import BuildRequest, make_request
from polybuild.progress.events import VertexCompleted, VertexStarted

BUILDER = Builder("default")


def request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> BuildRequest:
    monkeypatch.setenv("API_TOKEN", "value-of-the-secret-1234")
    ctx = tmp_path / "app"
    ctx.mkdir(exist_ok=True)
    return make_request(
        ctx,
        secrets=["id=API_TOKEN"],
        build_args={"COLOR": "blue"},
        labels={"team": "x"},
        target="release",
        no_cache=True,
        cache_from=["type=gha,token=gha-token-5678,url=http://cache"],
        cache_to=["type=registry,ref=r.example/c:1,mode=max"],
    )


def test_a_record_names_secret_ids_never_their_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = request(tmp_path, monkeypatch)
    events = [VertexStarted("sha256:a", "[1/1] RUN x", 1.0), VertexCompleted("sha256:a", 2.0)]
    record = make_record(asked, BUILDER, (), events, started=1.0, completed=3.0, status=COMPLETED)
    assert record.name == "app (release)"
    assert record.secrets == ("API_TOKEN",)
    assert record.options["build-arg:COLOR"] == "blue"
    assert record.options["label:team"] == "x"
    assert record.options["no-cache"] == ""
    assert record.options["cache-from"] == "type=gha,url=http://cache"
    assert record.options["cache-to"] == "type=registry,ref=r.example/c:1,mode=max"
    assert record.context == str(tmp_path / "app")
    assert record.dockerfile == str(tmp_path / "app" / "Dockerfile")
    data = encode(record)
    assert b"value-of-the-secret-1234" not in data and b"gha-token-5678" not in data


def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: BaseException | None) -> str:
    root = tmp_path / "root"
    warnings: list[str] = []

    async def build() -> None:
        with recording(request(tmp_path, monkeypatch), BUILDER, root, warnings.append) as out:
            out.recorder.emit(VertexStarted("sha256:a", "[1/1] RUN x", 1.0))
            out.image_digest = "sha256:" + "0" * 64
            if failure is not None:
                raise failure

    asyncio.run(build())
    assert warnings == []
    return HistoryStore(root).find("").status


def test_every_ending_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(tmp_path, monkeypatch, None) == COMPLETED
    with pytest.raises(RuntimeError, match="boom"):
        run(tmp_path, monkeypatch, RuntimeError("boom"))
    with pytest.raises(asyncio.CancelledError):
        run(tmp_path, monkeypatch, asyncio.CancelledError())
    store = HistoryStore(tmp_path / "root")
    statuses = [(r.status, r.error) for r in store.records()]
    assert statuses == [(CANCELED, "context canceled"), (ERROR, "boom"), (COMPLETED, "")]
    assert all(r.steps[0].completed is None for r in store.records()[:2])


def test_a_record_that_cannot_be_written_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "root"
    root.mkdir(mode=0o700)
    (root / "history").write_text("not a directory")
    warnings: list[str] = []
    with recording(request(tmp_path, monkeypatch), BUILDER, root, warnings.append):
        pass
    assert len(warnings) == 1 and "not recorded in the history" in warnings[0]


def test_stale_temp_files_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    history = tmp_path / "root" / "history"
    history.mkdir(parents=True, mode=0o700)
    stale, fresh = history / ".tmp-old", history / ".tmp-new"
    stale.write_text("x")
    fresh.write_text("x")
    os.utime(stale, (1.0, 1.0))
    run(tmp_path, monkeypatch, None)
    assert not stale.exists() and fresh.exists()
