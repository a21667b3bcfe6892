"""The test hosts of remote-node tests: `test_host(name)` starts (once per session) a host
that runs sshd in network, mount and PID namespaces of its own (tests/nodes/hosts.py).

A test that uses `test_host` is marked `root` and `integration` (it needs root to make
namespaces and talks to real sshd processes).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import require, require_root, require_tool
from tests.nodes.hosts import SSHD, SshHosts

HOST_FIXTURES = frozenset({"test_host"})


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `root` and `integration` every test that uses a test host (before -m selects)."""
    for item in items:
        if HOST_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.root)
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", name="test_host")
def test_host_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshHosts]:
    """A factory: test_host("a") -> SshHost, started on first use, all removed at the end."""
    require_root()
    for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
        require_tool(tool)
    require(SSHD.exists(), f"{SSHD} is not installed (openssh-server)")
    hosts = SshHosts(tmp_path_factory.mktemp("hosts"))
    try:
        yield hosts
    finally:
        hosts.close()
