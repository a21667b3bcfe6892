"""Scratch dirs in TMPDIR: what a killed polybuild left is removed by the next one."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from polybuild.scratch import scratch_dir


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_the_next_scratch_dir_removes_those_of_dead_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / f"polybuild-tar-{dead_pid()}-abc"
    (dead / "rootfs").mkdir(parents=True)
    alive = tmp_path / f"polybuild-tar-{os.getppid()}-def"
    alive.mkdir()
    other_kind = tmp_path / f"polybuild-add-{dead_pid()}-ghi"
    other_kind.mkdir()
    victim = tmp_path / "victim"
    victim.mkdir()
    (tmp_path / f"polybuild-tar-{dead_pid()}-link").symlink_to(victim)
    with scratch_dir("tar") as scratch:
        assert scratch.name.startswith(f"polybuild-tar-{os.getpid()}-")
        assert scratch.stat().st_mode & 0o777 == 0o700
        assert not dead.exists()
        assert alive.exists() and other_kind.exists() and victim.exists()
    assert not scratch.exists()
