"""`build --call outline` / `--print outline` from the command line: buildx's text on stdout,
nothing built, and the methods --print takes besides buildx's (`graph`)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import run_cli

DOCKERFILE = "# ANSWER is the answer\nARG ANSWER=42\nFROM scratch AS out\nARG ANSWER\n"
TEXT = "TARGET: out\n\nBUILD ARG   VALUE   DESCRIPTION\nANSWER      42      is the answer\n\n"


def test_call_and_print_outline_print_buildx_text(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    for flags in (("--call", "outline"), ("--print", "outline"), ("--call=outline,format=text",)):
        done = run_cli(tmp_path / "root", "build", *flags, str(tmp_path))
        assert (done.returncode, done.stdout) == (0, TEXT), done.stderr
    given = run_cli(tmp_path / "root", "build", "--call", "outline,format=json",
                    "--build-arg", "ANSWER=7", str(tmp_path))  # fmt: skip
    assert given.returncode == 0, given.stderr
    assert json.loads(given.stdout)["args"][0]["value"] == "7"


def test_outline_errors(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    missing = run_cli(tmp_path / "root", "build", "--call", "outline", "--target", "nope",
                      str(tmp_path))  # fmt: skip
    assert missing.returncode == 1
    assert 'target stage "nope" could not be found' in missing.stderr
    graph_json = run_cli(tmp_path / "root", "build", "--print", "graph,format=json", str(tmp_path))
    assert (
        graph_json.returncode == 2 and "format=json is not supported for graph" in graph_json.stderr
    )
