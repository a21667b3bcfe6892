"""Ctrl-C during a build on an ssh node: the client stops at once (exit code 130, no output
written) and the node's step is stopped too: nothing of the build keeps running there."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_platforms
from tests.nodes.hosts import SshHost, SshHosts
from tests.nodes.test_remote_bootstrap import wait_for_no_dial_stdio
from tests.nodes.test_remote_build import Client, builder_on, context

MARK = "pbt-cancel-me"


def step_processes(host: SshHost) -> list[str]:
    """The node's processes that belong to the step (its shell and its sleep)."""
    listing = host.run("ps", "-eo", "args", check=True).stdout.splitlines()
    return [line for line in listing if MARK in line and not line.startswith("ps ")]


def test_ctrl_c_stops_the_build_on_the_node(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("cancel")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "cancel")
    ctx = context(tmp_path, f"FROM busybox\nRUN echo started; sleep 120; echo {MARK}\n")
    out = tmp_path / "out.tar"
    build = subprocess.Popen(
        client.argv("build", "--builder", "cancel", "--platform", "linux/amd64",
                    "--progress", "plain", "-o", f"type=oci,dest={out}", str(ctx)),
        env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
    )  # fmt: skip
    assert build.stderr is not None
    lines = []
    for line in build.stderr:  # until the node runs the step
        lines.append(line)
        if "started" in line and "echo" not in line:
            break
    else:
        pytest.fail("the step never started:\n" + "".join(lines))
    assert step_processes(host), "the step is not running on the node"
    os.killpg(build.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
    pressed = time.monotonic()
    try:
        rest = build.communicate(timeout=20)[1]
    except subprocess.TimeoutExpired:
        build.kill()
        pytest.fail("the build did not stop within 20 s of Ctrl-C")
    assert build.returncode == 130, "".join(lines) + rest
    assert time.monotonic() - pressed < 20
    assert not out.exists()
    deadline = time.monotonic() + 15
    while (left := step_processes(host)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], "the step still runs on the node"
    assert wait_for_no_dial_stdio(host, 15) == []
    state = "/var/lib/polybuild/containers/runc"  # the node data root's runc state
    runc = host.run("runc", "--root", state, "list", "-q", check=False)
    assert runc.stdout.strip() == "", runc.stdout


def test_a_node_dying_stops_the_other_nodes_work(test_host: SshHosts, tmp_path: Path) -> None:
    require_platforms("linux/arm64")
    alive, dying = test_host("cstay"), test_host("cdie")
    client = Client(alive, tmp_path / "client-root")
    import_busybox(tmp_path / "client-root", ("amd64", "arm64"))
    stay = ("--node", "stay", "--platform", "linux/amd64", alive.endpoint)
    die = ("--append", "--node", "die", "--platform", "linux/arm64", dying.endpoint)
    for args in (stay, die):
        created = client.run("create", "--name", "pair", *args)
        assert created.returncode == 0, created.stderr
    ctx = context(tmp_path, f"FROM busybox\nRUN echo started; sleep 120; echo {MARK}\n")
    build = subprocess.Popen(
        client.argv("build", "--builder", "pair", "--platform", "linux/amd64,linux/arm64",
                    "--progress", "plain", "-o", f"type=oci,dest={tmp_path / 'o.tar'}", str(ctx)),
        env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert build.stderr is not None
    lines, started = [], 0
    for line in build.stderr:  # until both nodes run the step
        lines.append(line)
        started += "started" in line and "echo" not in line
        if started == 2:
            break
    else:
        pytest.fail("the steps never started:\n" + "".join(lines))
    assert step_processes(alive)
    test_host.stop("cdie")
    try:
        rest = build.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        build.kill()
        pytest.fail("the build did not fail within 30 s of a node dying")
    assert build.returncode == 1, "".join(lines) + rest  # a failed build: buildx's 1
    assert f"node die ({dying.endpoint})" in rest, rest
    deadline = time.monotonic() + 15
    while (left := step_processes(alive)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == [], "the other node's step still runs"
    assert wait_for_no_dial_stdio(alive, 15) == []
    assert not (tmp_path / "o.tar").exists()
