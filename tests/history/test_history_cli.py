"""Real builds (busybox, this machine) recorded in the history, read back with
`polybuild history ls|inspect|logs|rm`: completed, failed and Ctrl-C'd builds, and no
secret value anywhere in the records."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_root, run_cli

pytestmark = pytest.mark.root

SECRET = b"history-secret-value-5b1e"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    require_root()
    root = tmp_path / "root"
    import_busybox(root, ("amd64",))
    return root


def context(tmp_path: Path, name: str, dockerfile: str) -> Path:
    directory = tmp_path / name
    directory.mkdir()
    (directory / "Dockerfile").write_text(dockerfile)
    return directory


def history(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = run_cli(root, "history", *args)
    assert done.returncode == 0, done.stderr
    return done


def ls_json(root: Path) -> list[dict[str, object]]:
    return [
        json.loads(line) for line in history(root, "ls", "--format", "json").stdout.splitlines()
    ]


def test_completed_and_failed_builds_are_recorded(root: Path, tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(SECRET)
    good = context(
        tmp_path,
        "app",
        "FROM busybox\nRUN echo hello from the build\n"
        "RUN --mount=type=secret,id=tok cat /run/secrets/tok | wc -c\n",
    )
    built = run_cli(
        root,
        "build",
        "--progress=plain",
        "--secret",
        f"id=tok,src={tmp_path / 'secret'}",
        "--build-arg",
        "COLOR=blue",
        "-o",
        f"type=oci,dest={tmp_path / 'out.tar'}",
        str(good),
    )
    assert built.returncode == 0, built.stderr
    bad = context(tmp_path, "bad", "FROM busybox AS base\nRUN echo about to fail; exit 3\n")
    failed = run_cli(root, "build", "--progress=plain", "--target", "base", str(bad))
    assert failed.returncode != 0

    listed = ls_json(root)
    assert [(r["name"], r["status"]) for r in listed] == [
        ("bad (base)", "Error"),
        ("app", "Completed"),
    ]
    table = history(root, "ls").stdout.splitlines()
    assert table[0].split() == ["BUILD", "ID", "NAME", "STATUS", "CREATED", "AT", "DURATION"]
    assert table[1].split()[1:4] == ["bad", "(base)", "Error"]

    completed = json.loads(history(root, "inspect", "^1", "--format", "json").stdout)
    assert completed["Status"] == "completed"
    assert completed["Secrets"] == ["tok"]
    assert {"Name": "COLOR", "Value": "blue"} in completed["BuildArgs"]
    assert completed["Image"].startswith("sha256:")
    # BuildKit's steps: load definition, metadata, .dockerignore, FROM, 2 RUNs, export
    assert completed["NumTotalSteps"] == completed["NumCompletedSteps"] == 7
    # the [internal] and export steps are not any platform's
    assert {s["Platform"] for s in completed["Steps"] if s["Platform"]} == {"linux/amd64"}
    assert {s["Node"] for s in completed["Steps"]} == {"this machine"}

    text = history(root, "inspect").stdout
    assert text.startswith("Name:\t\tbad (base)\nRef:\t\t")
    assert "Target:\t\tbase\n" in text
    assert "Error:\t\tUnknown " in text and "exit code: 3" in text
    assert "Logs:\n> => " in text and "> about to fail\n" in text

    logs = run_cli(root, "history", "logs", "^1")
    assert logs.returncode == 0, logs.stderr
    assert "RUN echo hello from the build" in logs.stderr
    assert "hello from the build\n" in logs.stderr
    assert "DONE" in logs.stderr

    stored = b"".join(p.read_bytes() for p in (root / "history").iterdir())
    assert SECRET not in stored and base64.b64encode(SECRET)[:20] not in stored
    for path in (root / "history").iterdir():
        assert path.stat().st_mode & 0o777 == 0o600

    ref = listed[0]["ref"]
    assert isinstance(ref, str)
    history(root, "rm", ref.rsplit("/", 1)[1])
    assert [r["name"] for r in ls_json(root)] == ["app"]
    history(root, "rm", "--all")
    assert ls_json(root) == []
    assert run_cli(root, "history", "rm").returncode != 0


def test_a_ctrl_c_build_is_recorded_as_canceled(root: Path, tmp_path: Path) -> None:
    # (a canceled RUN step's container runs to its end before polybuild exits: keep it short)
    slow = context(tmp_path, "slow", "FROM busybox\nRUN echo started; sleep 15\n")
    env = {**os.environ, "POLYBUILD_ROOT": str(root)}
    # SIGINT raises KeyboardInterrupt as under a terminal, even when this test runs as a
    # background job (whose shell ignores SIGINT, which children inherit)
    main = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'polybuild'; runpy.run_module('polybuild', run_name='__main__')"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", main, "build", "--progress=plain", str(slow)],
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + 60
    while b"started" not in seen and time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            break
        seen += line
    assert b"started" in seen, seen.decode(errors="replace")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    assert process.returncode != 0

    listed = ls_json(root)
    assert len(listed) == 1 and listed[0]["status"] == "Error"  # as buildx shows a cancel
    canceled = history(root, "ls", "--filter", "status=canceled", "--format", "json")
    assert len(canceled.stdout.splitlines()) == 1
    text = history(root, "inspect").stdout
    assert "Status:\t\tCanceled\n" in text
    data = json.loads(history(root, "inspect", "--format", "json").stdout)
    assert data["Status"] == "canceled"
    assert [s["Canceled"] for s in data["Steps"]][-1] is True  # the RUN, after FROM's steps
