"""The tty view as a person sees it: a real two-platform build in a tmux pane, read with
`capture-pane` while it runs and after it ends."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require, require_platforms, require_root

pytestmark = [pytest.mark.root, pytest.mark.qemu, pytest.mark.integration]

TICKS = 14
DOCKERFILE = f"""\
FROM busybox
RUN for i in $(seq 1 {TICKS}); do echo "tick $i"; sleep 0.4; done
"""


def _tmux(socket: str, *args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, check=False, timeout=30
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_build_in_tmux_shows_running_steps_output_and_markers_then_collapses(
    tmp_path: Path,
) -> None:
    require_root()
    require(shutil.which("tmux") is not None, "tmux is missing: run ./scripts/setup")
    require_platforms("linux/arm64")
    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    exit_file = tmp_path / "exit"
    build = shlex.join([sys.executable, "-m", "polybuild", "build", "--progress=tty",
                        "--platform", "linux/amd64,linux/arm64", str(ctx)])  # fmt: skip
    script = f"{build}; echo $? > {shlex.quote(str(exit_file))}; sleep 600"
    socket = f"polybuild-test-{os.getpid()}"
    env = ["-e", f"POLYBUILD_ROOT={root}", "-e", "TERM=xterm-256color"]
    _tmux(socket, "-f", "/dev/null", "new-session", "-d", "-s", "build", "-x", "120", "-y", "40",
          *env, "sh", "-c", script)  # fmt: skip
    snapshots: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while not exit_file.exists() and time.monotonic() < deadline:
            snapshots.append(_tmux(socket, "capture-pane", "-p", "-t", "build"))
            time.sleep(0.2)
        assert exit_file.exists(), "the build did not end in 240 s:\n" + snapshots[-1]
        time.sleep(0.3)
        final = _tmux(socket, "capture-pane", "-p", "-S", "-", "-t", "build")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    assert exit_file.read_text().strip() == "0", final

    arm = re.compile(r"=> \[linux/arm64 2/2\] RUN for i in .* emulated +\d+\.\ds")
    amd = re.compile(r"=> \[linux/amd64 2/2\] RUN for i in .* native +\d+\.\ds")
    running = [s for s in snapshots if arm.search(s) and " => => # tick " in s]
    assert running, "no snapshot showed the emulated step running with its output"
    assert any(amd.search(s) for s in snapshots), "the native step never showed its marker"
    for snapshot in running:
        lines = snapshot.splitlines()
        # the output sits right under its step, the last lines only: never more than six
        for index, line in enumerate(lines):
            if line.startswith(" => => # tick"):
                assert lines[index - 1].startswith((" => [", " => => # tick")), snapshot
        ticks = [int(n) for n in re.findall(r" => => # tick (\d+)", snapshot)]
        assert ticks and len(ticks) <= 12, snapshot  # at most six per running step
    most = max(len(re.findall(r" => => # tick", s)) for s in running)
    assert most >= 6, "a step with many lines of output never showed its last six"

    assert re.search(r"\[\+\] Building \d+\.\ds \(\d+/\d+\) FINISHED", final), final
    assert " => => # " not in final, final  # output collapsed once the steps were done
    assert re.search(r" => \[linux/arm64 2/2\] RUN for i in .* emulated +\d+\.\ds", final), final
    assert "\x1b" not in final
