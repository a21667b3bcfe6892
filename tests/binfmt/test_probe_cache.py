"""Probe results kept between commands: reused only under the same fingerprint, and only from
a file no one but root can have written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polybuild.binfmt import probe_cache
from tests.conftest import require_root

HANDLER = """enabled
interpreter {interp}
flags: {flags}
offset 0
magic 7f454c46020101000000000000000000020028
mask ffffffffffffff00fffffffffffffffffeffff
"""


def fake_binfmt(root: Path, flags: str, interp: Path) -> Path:
    root.mkdir(exist_ok=True)
    (root / "register").write_text("")
    (root / "status").write_text("enabled\n")
    (root / "qemu-arm").write_text(HANDLER.format(interp=interp, flags=flags))
    return root


def test_fingerprint_follows_handlers_and_non_f_interpreters(tmp_path: Path) -> None:
    interp = tmp_path / "qemu-arm-static"
    interp.write_bytes(b"one")
    root = fake_binfmt(tmp_path / "binfmt", "F", interp)
    first = probe_cache.fingerprint(root)
    assert first and first == probe_cache.fingerprint(root)
    interp.write_bytes(b"changed")  # an F handler opened its interpreter at registration
    assert probe_cache.fingerprint(root) == first
    (root / "status").write_text("disabled\n")
    assert probe_cache.fingerprint(root) != first
    fake_binfmt(root, "", interp)  # without F the file on disk is what each run opens
    without_f = probe_cache.fingerprint(root)
    interp.write_bytes(b"changed again")
    assert probe_cache.fingerprint(root) != without_f
    (root / "qemu-arm").unlink()
    assert probe_cache.fingerprint(root) not in (first, without_f)


def test_store_and_load(tmp_path: Path) -> None:
    require_root()
    directory = tmp_path / "run"
    results = [{"arch": "arm", "status": "emulated", "detail": "", "handler": "qemu-arm"}]
    probe_cache.store("k1", results, directory)
    assert (os.stat(directory).st_mode & 0o777) == 0o700
    assert probe_cache.load("k1", directory) == results
    assert probe_cache.load("k2", directory) is None  # another fingerprint
    calls: list[int] = []

    def probe() -> list[dict[str, object]]:
        calls.append(1)
        return []

    assert probe_cache.remembered(probe, directory) == []  # today's key differs from "k1"
    assert probe_cache.remembered(probe, directory) == [] and calls == [1]


@pytest.mark.parametrize("loose", ["file", "directory"])
def test_a_file_others_could_write_is_ignored(tmp_path: Path, loose: str) -> None:
    require_root()
    directory = tmp_path / "run"
    probe_cache.store("k", [{"arch": "arm"}], directory)
    target = directory / probe_cache.CACHE_FILE if loose == "file" else directory
    target.chmod(0o666 if loose == "file" else 0o777)
    assert probe_cache.load("k", directory) is None
    (directory / probe_cache.CACHE_FILE).unlink()
    (directory / probe_cache.CACHE_FILE).symlink_to(tmp_path / "elsewhere")
    assert probe_cache.load("k", directory) is None
