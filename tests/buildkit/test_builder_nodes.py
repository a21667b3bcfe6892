"""BuildKit daemons as builder nodes from the command line: `create --driver remote`,
`inspect --bootstrap` showing the daemon's version and platforms (over a unix socket, and
over tcp with mutual TLS: the right CA accepted, a wrong one refused), and a builder mixing
this machine and a daemon."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitCertificates, BuildkitDaemon
from tests.conftest import require_root, run_cli


def fields(text: str) -> dict[str, str]:
    """`Key: value` lines of inspect's text (the last one of each key wins)."""
    found = {}
    for line in text.splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            found[key.strip()] = value.strip()
    return found


pytestmark = [pytest.mark.root, pytest.mark.integration]


def test_a_daemon_as_a_node_shows_its_version_and_platforms(buildkitd: str, tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    created = run_cli(
        root, "create", "--name", "bk", "--driver", "remote", "--bootstrap", buildkitd
    )
    assert (created.returncode, created.stdout) == (0, "bk\n"), created.stderr
    shown = run_cli(root, "inspect", "--bootstrap", "bk")
    assert shown.returncode == 0, shown.stderr
    found = fields(shown.stdout)
    assert found["Driver"] == "remote" and found["Endpoint"] == buildkitd, shown.stdout
    assert found["BuildKit version"] == "v0.32.2", shown.stdout
    assert found["Platforms"].startswith("linux/amd64, "), shown.stdout  # native first
    assert "linux/arm64" in found["Platforms"]


def test_mutual_tls_accepted_and_a_wrong_ca_refused(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    buildkit_certificates: BuildkitCertificates,
    tmp_path: Path,
) -> None:
    require_root()
    certs = buildkit_certificates
    daemon = buildkitd_factory(tls=certs.daemon)
    assert daemon.tcp is not None
    root = tmp_path / "root"
    tls = f"cacert={certs.ca},cert={certs.client_cert},key={certs.client_key}"
    good = run_cli(root, "create", "--name", "tls", "--driver", "remote", "--driver-opt", tls,
                   "--bootstrap", daemon.tcp)  # fmt: skip
    assert good.returncode == 0, good.stderr
    wrong = f"cacert={certs.other_ca},cert={certs.client_cert},key={certs.client_key}"
    bad = run_cli(root, "create", "--name", "wrong", "--driver", "remote", "--driver-opt", wrong,
                  "--bootstrap", daemon.tcp)  # fmt: skip
    assert bad.returncode == 13, bad.stderr
    assert f"node {daemon.tcp}: TLS refused" in bad.stderr, bad.stderr
    plain = run_cli(root, "inspect", "--bootstrap", "tls")
    assert plain.returncode == 0, plain.stderr
    assert fields(plain.stdout)["BuildKit version"] == "v0.32.2"


def test_a_mixed_builder_shows_each_nodes_driver(buildkitd: str, tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    assert run_cli(root, "create", "--name", "mixed", "--platform", "linux/amd64").returncode == 0
    appended = run_cli(root, "create", "--append", "--name", "mixed", "--node", "bk",
                       "--driver", "remote", "--platform", "linux/arm64", buildkitd)  # fmt: skip
    assert appended.returncode == 0, appended.stderr
    shown = run_cli(root, "inspect", "mixed").stdout
    assert "\nDriver:" in shown and fields(shown)["Driver"] == "remote", shown  # the node's
    listed = run_cli(root, "ls", "--format", "json").stdout.splitlines()[0]
    assert '"Driver":"remote","Endpoint":"' + buildkitd in listed, listed
