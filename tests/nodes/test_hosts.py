"""The test hosts themselves: reachable over ssh with the real host key only, running our
polybuild, with a data root of their own, and gone without a trace after teardown."""

from __future__ import annotations

import secrets
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, require_root
from tests.nodes.hosts import NODE_ROOT, SshHosts, write_ssh_config
from tests.nodes.netns import pids_in

pytestmark = [pytest.mark.root, pytest.mark.integration]


def client_version() -> str:
    result = subprocess.run(
        [sys.executable, "-m", "polybuild", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def test_two_hosts_run_the_clients_polybuild(test_host: SshHosts) -> None:
    one, two = test_host("one"), test_host("two")
    assert one.address != two.address
    assert one.ssh_config == two.ssh_config  # one config names both nodes
    assert one.endpoint == "ssh://root@pbt-one"
    want = client_version()
    ours = Path(sysconfig.get_path("scripts")) / "polybuild"
    for host in (one, two):
        argv = ["ssh", "-F", str(host.ssh_config), host.alias, "polybuild --version"]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == want
        assert host.run("command", "-v", "polybuild", check=True).stdout.strip() == str(ours)
    # Each host is its own machine: the address it listens on, its own PID 1.
    assert one.run("cat", "/proc/1/comm", check=True).stdout.strip() == "sshd"
    assert one.address in one.run("ip", "-4", "-o", "addr", "show", check=True).stdout
    assert two.address not in one.run("ip", "-4", "-o", "addr", "show", check=True).stdout
    assert one.env["POLYBUILD_SSH_CONFIG"] == str(one.ssh_config)


def test_a_hosts_data_root_and_tmp_are_not_the_clients(test_host: SshHosts) -> None:
    host = test_host("one")
    token = secrets.token_hex(6)
    for shared in (NODE_ROOT, Path("/tmp")):
        on_node = f"pbt-node-{token}"
        host.run("sh", "-c", f"echo node > {shared}/{on_node}", check=True)
        assert not (shared / on_node).exists()
        on_client = shared / f"pbt-client-{token}"
        on_client.write_text("client")
        try:
            seen = host.run("test", "-e", str(on_client))
            assert seen.returncode == 1, seen.stderr
        finally:
            on_client.unlink()
    assert (host.data_root / f"pbt-node-{token}").read_text() == "node\n"
    assert host.run("stat", "-c", "%a", str(NODE_ROOT), check=True).stdout.strip() == "700"


def test_an_unknown_host_key_is_refused(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("one")
    other_key = tmp_path / "other"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)], check=True
    )
    wrong = tmp_path / "known_hosts"
    key = " ".join(other_key.with_suffix(".pub").read_text().split()[:2])
    wrong.write_text(f"{host.alias},{host.address} {key}\n")
    config = tmp_path / "ssh_config"
    write_ssh_config(config, [host], wrong)
    refused = host.run("true", config=config, timeout=30)
    assert refused.returncode == 255
    assert "host key" in refused.stderr.lower(), refused.stderr
    wrong.write_text("")  # not known at all: refused too, not added
    unknown = host.run("true", config=config, timeout=30)
    assert unknown.returncode == 255
    assert "host key verification failed" in unknown.stderr.lower(), unknown.stderr
    assert wrong.read_text() == ""
    assert host.run("true", timeout=30).returncode == 0  # the real key is accepted


def running(pids: list[int]) -> list[int]:
    """Those of `pids` that still run (a killed process whose parent died may stay a zombie
    until init reaps it)."""
    found = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            found.append(pid)
    return found


def links() -> str:
    return subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout


def test_teardown_leaves_nothing(tmp_path: Path) -> None:
    require_root()
    hosts = SshHosts(tmp_path / "hosts")
    try:
        host = hosts("gone")
        workdir = tmp_path / "hosts" / "gone"
        # A session left running on the node must go too.
        sleeper = subprocess.Popen(host.ssh_argv("sleep", "300"), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while host.run("pgrep", "-x", "sleep").returncode != 0:
            assert time.monotonic() < deadline, "the session never started"
        pids = host.pids()
        assert len(pids) >= 4  # unshare, sshd, the session's sshd, sleep
        assert f" {host.veth}@" in links()
        # The node's mounts are in its own mount namespace, never in ours.
        assert str(workdir) not in Path("/proc/self/mountinfo").read_text()
    finally:
        hosts.close()
    assert sleeper.wait(timeout=10) == 255  # its connection was cut
    assert pids_in(host.netns) == []
    assert running(pids) == []
    assert f" {host.veth}@" not in links()
    addresses = subprocess.run(
        ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True
    )
    assert f" {host.gateway}/" not in addresses.stdout
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    assert "pbt-" not in namespaces.stdout  # (none is ever named)
    assert not workdir.exists()


def test_a_stopped_host_cuts_its_sessions_and_refuses_new_ones(tmp_path: Path) -> None:
    require_root()
    hosts = SshHosts(tmp_path / "hosts")
    try:
        host = hosts("dies")
        sleeper = subprocess.Popen(host.ssh_argv("sleep", "300"), stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while host.run("pgrep", "-x", "sleep").returncode != 0:
            assert time.monotonic() < deadline, "the session never started"
        started = time.monotonic()
        hosts.stop("dies")
        assert sleeper.wait(timeout=10) == 255
        refused = host.run("true", timeout=30)
        assert time.monotonic() - started < 5
        assert refused.returncode == 255
        assert "connection refused" in refused.stderr.lower(), refused.stderr
        assert host.pids() == []
    finally:
        hosts.close()


def test_a_killed_runs_leftovers_are_removed_by_the_next(tmp_path: Path) -> None:
    require_root()
    made = tmp_path / "made"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from tests.nodes.hosts import SshHosts\n"
        "host = SshHosts(Path(sys.argv[1]))('left')\n"
        "Path(sys.argv[2]).write_text(' '.join([host.netns, host.veth]))\n"
        "time.sleep(300)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "hosts"), str(made)], cwd=REPO
    )
    try:
        deadline = time.monotonic() + 20
        while not made.exists():
            assert child.poll() is None, "the child run failed to make its host"
            assert time.monotonic() < deadline, "the child run made no host in 20 s"
            time.sleep(0.05)
    finally:
        child.kill()  # as a kill -9 of pytest: no teardown ran
        child.wait()
    netns, veth = made.read_text().split()
    pids = pids_in(netns)
    assert pids, "the killed run's sshd should still be running"
    assert f" {veth}@" in links()
    SshHosts(tmp_path / "next").close()
    assert pids_in(netns) == []
    assert running(pids) == []
    assert f" {veth}@" not in links()
