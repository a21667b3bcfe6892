"""bootstrap() end to end: a real `polybuild dial-stdio` child (the local transport), nodes
of other protocol versions, nodes that say nothing or the wrong thing, and ssh to a closed
port on loopback."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from polybuild._version import __version__
from polybuild.binfmt.probe import runnable_platforms
from polybuild.errors import NodeUnreachableError
from polybuild.platforms import format_platform, host_platform
from polybuild.remote.client import STDOUT_HINT, bootstrap
from polybuild.remote.local import open_local
from polybuild.remote.messages import PROTOCOL_VERSION
from polybuild.remote.process import ProcessLink, spawn
from tests.conftest import require_tool


def bootstrap_local(*dial_stdio_args: str, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    return asyncio.run(
        bootstrap(
            "test-node",
            timeout=timeout,
            opener=lambda: open_local(endpoint="test-node", dial_stdio_args=dial_stdio_args),
        )
    )


def failure(endpoint: str, argv: list[str], *, timeout: float = 10.0) -> NodeUnreachableError:
    async def opener() -> ProcessLink:
        return await spawn(endpoint, argv)

    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(bootstrap(endpoint, timeout=timeout, opener=opener))
    assert caught.value.endpoint == endpoint
    return caught.value


def test_bootstrap_returns_this_machines_platforms() -> None:
    info = bootstrap_local()
    assert (info.polybuild, info.protocol) == (__version__, PROTOCOL_VERSION)
    here = {format_platform(p) for p in runnable_platforms()} | {format_platform(host_platform())}
    assert set(info.platforms) == here
    assert len(info.platforms) == len(here)  # each once: native ones are not emulated too
    assert format_platform(host_platform()) in info.native
    assert info.data_root_ok, info.data_root_problem


def test_a_node_with_an_older_protocol_is_told_to_upgrade() -> None:
    with pytest.raises(NodeUnreachableError) as caught:
        bootstrap_local("--protocol-version", str(PROTOCOL_VERSION - 1))
    assert str(caught.value) == (
        f"node test-node: it runs polybuild {__version__} (protocol {PROTOCOL_VERSION - 1}), "
        f"this client speaks protocol {PROTOCOL_VERSION}: upgrade polybuild on test-node"
    )


def test_a_node_with_a_newer_protocol_asks_to_upgrade_the_client() -> None:
    with pytest.raises(NodeUnreachableError) as caught:
        bootstrap_local("--protocol-version", str(PROTOCOL_VERSION + 1))
    assert str(caught.value).endswith(
        f"this client (polybuild {__version__}) speaks protocol {PROTOCOL_VERSION}: "
        "upgrade polybuild here"
    )
    assert f"protocol {PROTOCOL_VERSION + 1}" in str(caught.value)


def test_a_node_that_never_answers_fails_within_the_timeout() -> None:
    started = time.monotonic()
    error = failure("silent", [sys.executable, "-c", "import time; time.sleep(60)"], timeout=1)
    assert time.monotonic() - started < 1 + 3  # the timeout, then SIGTERM at once
    assert error.reason == "no answer within 1 s"


def test_stdout_noise_before_polybuild_is_explained() -> None:
    noisy = f"echo 'Welcome to node1'; exec {sys.executable} -m polybuild dial-stdio"
    error = failure("noisy", ["sh", "-c", noisy])
    assert "not the polybuild protocol: refusing a frame of" in error.reason
    assert error.hint == STDOUT_HINT


def test_a_node_that_dies_is_explained_by_its_last_words() -> None:
    error = failure("dying", ["sh", "-c", "echo 'out of memory' >&2; exit 3"])
    assert error.reason == "out of memory"
    assert str(error) == "node dying: out of memory"


def test_ssh_to_a_closed_port_fails_fast_naming_the_endpoint() -> None:
    require_tool("ssh")
    started = time.monotonic()
    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(bootstrap("ssh://root@127.0.0.1:1", timeout=5))
    assert time.monotonic() - started < 5
    assert caught.value.endpoint == "ssh://root@127.0.0.1:1"
    assert "Connection refused" in str(caught.value)
    assert caught.value.hint == (
        "check that `ssh -p 1 -l root 127.0.0.1 polybuild --version` works from here"
    )


def test_a_node_description_with_terminal_escapes_is_refused() -> None:
    from polybuild.remote.client import checked
    from polybuild.remote.messages import NodeInfo

    good = NodeInfo(1, "0.1.0", PROTOCOL_VERSION, ("linux/arm/v7",), ("linux/s390x",), "/x", True)
    assert checked(good, "n") is good
    evil = NodeInfo(1, "0.1.0", PROTOCOL_VERSION, ("linux/arm64\x1b[2J",), (), "/x", True)
    with pytest.raises(NodeUnreachableError) as caught:
        checked(evil, "n")
    assert "\x1b" not in str(caught.value)
    assert "invalid text" in str(caught.value)


def test_what_a_node_writes_is_made_printable() -> None:
    from polybuild.remote.process import last_line, printable

    assert printable("ok \x1b]0;owned\x07 done") == "ok ?]0;owned? done"
    assert printable("x" * 1000, limit=10) == "xxxxxxx..."
    assert last_line("first\n\x1b[31mred\n\n") == "?[31mred"


def test_a_polybuild_error_on_the_node_is_the_reason_not_its_hint() -> None:
    node = "echo 'ERROR: cannot use the data root /x' >&2; echo 'hint: choose another' >&2; exit 1"
    error = failure("broken", ["sh", "-c", node])
    assert error.reason == "cannot use the data root /x"
