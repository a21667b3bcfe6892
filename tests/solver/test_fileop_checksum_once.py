"""The same COPY sources for several platforms are checksummed once per solve."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from polybuild.graph import ops
from polybuild.platforms import parse
from polybuild.solver import fileop
from polybuild.solver.fileop import DockerfileFileOps


def test_one_walk_for_every_platform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a.txt").write_text("a")
    calls: list[tuple[str, ...]] = []
    real = fileop.content_checksum

    def counting(context: Path, sources: tuple[str, ...], *args: object, **kw: object) -> str:
        calls.append(tuple(sources))
        return real(context, sources, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(fileop, "content_checksum", counting)
    file_ops = DockerfileFileOps()
    copies = [
        ops.Copy(None, ops.LocalSource("context", parse(p)), ("a.txt",), "/x/", parse(p))
        for p in ("linux/amd64", "linux/arm64", "linux/arm/v7")
    ]
    other = ops.Copy(None, copies[0].source, ("a.txt",), "/y/", parse("linux/amd64"), parents=True)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda c=c: results.append(file_ops.checksum(tmp_path, c, ())))
        for c in copies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(results)) == 1 and len(calls) == 1
    file_ops.checksum(tmp_path, other, ())  # other options: its own walk
    assert len(calls) == 2
