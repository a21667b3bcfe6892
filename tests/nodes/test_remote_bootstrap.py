"""bootstrap() over real ssh to a test host: the node's own version and platforms, nothing
left running after; a host key we do not know and a missing polybuild refused with the
reason; `polybuild inspect --bootstrap` showing a live node and a dead one in seconds."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from polybuild._version import __version__
from polybuild.binfmt.probe import runnable_platforms
from polybuild.errors import NodeUnreachableError
from polybuild.platforms import format_platform, host_platform
from polybuild.remote.client import bootstrap
from polybuild.remote.messages import PROTOCOL_VERSION
from polybuild.remote.ssh import CONFIG_ENV, open_ssh, parse_endpoint
from tests.conftest import run_cli
from tests.nodes.hosts import NODE_ROOT, SshHost, SshHosts

pytestmark = [pytest.mark.root, pytest.mark.integration]


def test_bootstrap_asks_the_node_over_ssh(
    test_host: SshHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = test_host("boot")
    monkeypatch.setenv(CONFIG_ENV, str(host.ssh_config))
    info = asyncio.run(bootstrap(host.endpoint, timeout=20))
    assert (info.polybuild, info.protocol) == (__version__, PROTOCOL_VERSION)
    assert info.root
    assert info.data_root == str(NODE_ROOT)
    assert info.data_root_ok, info.data_root_problem
    # The test host shares this machine's CPU and kernel (binfmt_misc included), so its own
    # probe finds what ours finds, native first.
    assert format_platform(host_platform()) in info.native
    here = {format_platform(p) for p in runnable_platforms()} | {format_platform(host_platform())}
    assert set(info.platforms) == here
    assert wait_for_no_dial_stdio(host) == []  # the node's side ended with the session


def dial_stdio_pids(host: SshHost) -> list[int]:
    found = []
    for pid in host.pids():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue  # gone meanwhile
        if b"dial-stdio" in cmdline:
            found.append(pid)
    return found


def wait_for_no_dial_stdio(host: SshHost, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := dial_stdio_pids(host)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_an_unknown_host_key_is_refused(
    test_host: SshHosts, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    host = test_host("boot")
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    config = tmp_path / "ssh_config"
    # ssh takes the first value it reads: our empty known_hosts wins over the host's file.
    config.write_text(
        f"Host *\n  UserKnownHostsFile {empty}\n  StrictHostKeyChecking yes\n"
        f"Include {host.ssh_config}\n"
    )
    monkeypatch.setenv(CONFIG_ENV, str(config))
    started = time.monotonic()
    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(bootstrap(host.endpoint, timeout=10))
    assert time.monotonic() - started < 10
    assert str(caught.value) == f"node {host.endpoint}: host key verification failed"
    assert empty.read_text() == ""  # nothing was learned on the way


def test_a_node_without_polybuild_says_how_to_install_it(
    test_host: SshHosts, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = test_host("boot")
    monkeypatch.setenv(CONFIG_ENV, str(host.ssh_config))
    endpoint = parse_endpoint(host.endpoint)

    async def opener():  # type: ignore[no-untyped-def]
        return await open_ssh(endpoint, connect_timeout=10, polybuild="polybuild-not-here")

    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(bootstrap(host.endpoint, timeout=20, opener=opener))
    assert caught.value.reason == f"polybuild is not installed on {endpoint.host}"
    assert caught.value.hint is not None
    assert caught.value.hint.startswith("pip install polybuild there")


def test_inspect_bootstrap_shows_a_live_node_and_a_dead_one(
    test_host: SshHosts, tmp_path: Path
) -> None:
    host = test_host("boot")
    dead = "ssh://root@127.0.0.1:1"  # loopback, a closed port
    root = tmp_path / "client-root"
    for args in (
        ("create", "--name", "pair", "--node", "live", host.endpoint),
        ("create", "--append", "--name", "pair", "--node", "dead", dead),
    ):
        created = run_cli(root, *args, env=host.env, timeout=60)
        assert created.returncode == 0, created.stderr
    started = time.monotonic()
    result = run_cli(root, "inspect", "--bootstrap", "pair", env=host.env, timeout=60)
    assert time.monotonic() - started < 15  # seconds, not minutes
    assert result.returncode != 0  # a node could not be reached
    live, _, down = result.stdout.partition(f"Endpoint: {dead}")
    assert "Status: running" in " ".join(live.split())
    assert f"Polybuild version: {__version__}" in " ".join(live.split())
    assert format_platform(host_platform()) in live
    assert f"node {dead}: connect to host 127.0.0.1 port 1: Connection refused" in down
    assert f"could not be reached (first: dead, {dead})" in result.stderr
