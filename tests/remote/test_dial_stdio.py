"""`polybuild dial-stdio`: hidden from help; stdout carries frames and nothing else."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli


def test_dial_stdio_is_hidden_from_help(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    assert "dial-stdio" not in result.stdout
    assert "imagetools" in result.stdout


def test_only_frames_reach_stdout() -> None:
    # After take_stdio, a stray print (or a child's output) goes to stderr; the protocol's
    # own descriptor still reaches the real stdout.
    script = (
        "import os, subprocess\n"
        "from polybuild.remote.server import take_stdio\n"
        "stdin, stdout = take_stdio()\n"
        "print('stray print', flush=True)\n"
        "subprocess.run(['echo', 'child output'], check=True)\n"
        "os.write(stdout, b'FRAME')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, check=True, timeout=30
    )
    assert result.stdout == b"FRAME"
    assert b"stray print" in result.stderr
    assert b"child output" in result.stderr


def test_a_regular_file_on_stdin_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "input").write_bytes(b"")
    with (tmp_path / "input").open("rb") as stdin:
        result = subprocess.run(
            [sys.executable, "-m", "polybuild", "dial-stdio"],
            stdin=stdin,
            capture_output=True,
            check=False,
            timeout=30,
        )
    assert result.returncode == 2, result.stderr
    assert b"dial-stdio needs pipes or sockets on stdin and stdout" in result.stderr
    assert result.stdout == b""
