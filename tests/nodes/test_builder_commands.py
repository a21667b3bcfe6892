"""`polybuild create --bootstrap` and `inspect --bootstrap` against a real test host over ssh:
the node answers with its version and platforms; a dead endpoint beside it is shown with the
reason, in seconds, and leaving it makes the builder healthy again."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from polybuild._version import __version__
from tests.nodes.hosts import SshHosts

pytestmark = [pytest.mark.root, pytest.mark.integration]


def test_builder_with_an_ssh_node(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("builders")
    env = {**host.env, "POLYBUILD_ROOT": str(tmp_path / "root")}

    def polybuild(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "polybuild", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    created = polybuild(
        "create", "--name", "far", "--platform", "linux/arm64", "--bootstrap", host.endpoint
    )
    assert (created.returncode, created.stdout) == (0, "far\n"), created.stderr
    dead = "ssh://root@127.0.0.1:1"
    appended = polybuild("create", "--name", "far", "--append", "--bootstrap", dead)
    assert appended.returncode == 13 and "node far1 failed" in appended.stderr

    started = time.monotonic()
    shown = polybuild("inspect", "--bootstrap", "far")
    assert time.monotonic() - started < 15
    assert shown.returncode == 1 and "1 of 2 nodes of far could not be reached" in shown.stderr
    far0, far1 = shown.stdout.split("\n\nName:")[0:2]
    assert f"Endpoint:          {host.endpoint}\n" in far0
    assert "Status:            running\n" in far0
    assert f"Polybuild version: {__version__}\n" in far0
    platforms = next(line for line in far0.splitlines() if line.startswith("Platforms:"))
    assert platforms.split(None, 1)[1].startswith("linux/arm64*, ")  # pinned, then its probe's
    assert f"Error:    node {dead}: " in far1 and "refused" in far1

    assert polybuild("create", "--leave", "--name", "far", "--node", "far1").returncode == 0
    healthy = polybuild("inspect", "--bootstrap", "far")
    assert healthy.returncode == 0, healthy.stderr
    assert "Error:" not in healthy.stdout
    listed = polybuild("ls").stdout
    assert f" \\_ {host.endpoint}   inactive " in listed  # ls never connects


def test_driver_opt_polybuild_names_the_command_run_on_the_node(
    test_host: SshHosts, tmp_path: Path
) -> None:
    host = test_host("builders")
    env = {**host.env, "POLYBUILD_ROOT": str(tmp_path / "root")}

    def polybuild(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "polybuild", *args]
        return subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=120
        )

    ours = str(Path(sysconfig.get_path("scripts")) / "polybuild")  # what the node has
    good = polybuild("create", "--name", "opt", "--driver-opt", f"polybuild={ours}",
                     "--driver-opt", "connect-timeout=5", "--bootstrap", host.endpoint)  # fmt: skip
    assert good.returncode == 0, good.stderr
    assert "Status:            running\n" in polybuild("inspect", "--bootstrap", "opt").stdout
    missing = polybuild("create", "--name", "opt", "--node", "opt0",
                        "--driver-opt", "polybuild=/nowhere/polybuild")  # fmt: skip
    assert missing.returncode == 0, missing.stderr
    shown = polybuild("inspect", "--bootstrap", "opt")
    assert shown.returncode == 1
    assert "polybuild is not installed on" in shown.stdout + shown.stderr, shown
    refused = polybuild("create", "--name", "opt2", "--driver-opt", "image=moby/buildkit",
                        host.endpoint)  # fmt: skip
    assert refused.returncode == 2
    assert "--driver-opt: unknown option 'image'" in refused.stderr
