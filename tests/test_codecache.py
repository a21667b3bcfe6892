"""Dataclass methods compiled once and kept beside the bytecode: a second process compiles
none, classes behave as compiled ones, and an untrusted or corrupt file is not used."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import dataclasses, polybuild, polybuild.image, polybuild.graph, polybuild._codecache as c
@dataclasses.dataclass(frozen=True, slots=True)
class Point:
    x: int
    y: int = 2
p = Point(1)
try:
    p.x = 3
    frozen = False
except dataclasses.FrozenInstanceError:
    frozen = True
assert p == Point(1, 2) and hash(p) == hash(Point(1)) and repr(p) == "Point(x=1, y=2)"
print(len(c._added), frozen, c.cache_path())
"""


def run(prefix: Path, **env: str) -> tuple[int, bool, Path]:
    full = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    full |= {"PYTHONPYCACHEPREFIX": str(prefix), **env}
    out = subprocess.run([sys.executable, "-c", PROBE], env=full, capture_output=True,
                         text=True, check=True).stdout.split()  # fmt: skip
    return int(out[0]), out[1] == "True", Path(out[2])


NEEDED = sys.version_info < (3, 13)  # 3.13 compiles a class's methods in one go: no cache


def test_second_run_compiles_nothing(tmp_path: Path) -> None:
    compiled, frozen, path = run(tmp_path)
    if not NEEDED:
        assert compiled == 0 and frozen and not path.exists()
        return
    assert compiled > 20 and frozen
    assert path.is_file() and path.is_relative_to(tmp_path)
    assert run(tmp_path) == (0, True, path)


def test_untrusted_or_corrupt_files_are_not_used(tmp_path: Path) -> None:
    _, frozen, path = run(tmp_path)
    if not NEEDED:
        assert frozen and not path.exists()
        return
    path.chmod(0o666)  # anyone could have put code there
    compiled, frozen, _ = run(tmp_path)
    assert compiled > 20 and frozen
    path.chmod(0o644)
    path.write_bytes(b"polybuild-dataclass-code-2\0garbage")
    compiled, frozen, _ = run(tmp_path)
    assert compiled > 20 and frozen  # and the file is written again, whole
    assert run(tmp_path)[0] == 0


def test_no_file_without_bytecode_writing(tmp_path: Path) -> None:
    _, frozen, path = run(tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert frozen and not path.exists()
