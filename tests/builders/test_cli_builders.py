"""`polybuild create/ls/inspect/use/rm/stop` round trips with ssh nodes in the store.

In-process and as any user: this machine's probe and the ssh bootstrap are replaced by fakes,
except in the last test, which runs the real command against a closed port on loopback.
"""

from __future__ import annotations

import faulthandler
import json
import re
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from polybuild.builders import Node, NodeStatus
from polybuild.cli import builders_status, main
from polybuild.errors import NodeUnreachableError
from tests.conftest import run_cli

HERE = NodeStatus("running", "0.1.0", ("linux/amd64",))


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str


Polybuild = Callable[..., Ran]


async def fake_bootstrap(node: Node, timeout: float) -> NodeStatus:
    endpoint = node.endpoint
    if "dead" in endpoint:
        raise NodeUnreachableError(endpoint, "Connection refused")
    return NodeStatus("running", "0.9.0", ("linux/arm64", "linux/arm/v7"))


@pytest.fixture
def polybuild(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> Polybuild:
    monkeypatch.setenv("POLYBUILD_ROOT", str(tmp_path / "root"))
    monkeypatch.delenv("BUILDX_BUILDER", raising=False)
    monkeypatch.setattr(builders_status, "local_status", lambda: HERE)
    monkeypatch.setattr(builders_status, "remote_bootstrap", fake_bootstrap)
    # main() points faulthandler at its stderr: here that is pytest's capture, closed after
    monkeypatch.setattr(faulthandler, "enable", lambda *args, **kwargs: None)

    def run(*args: str, env: dict[str, str] | None = None) -> Ran:
        with monkeypatch.context() as scoped:
            for key, value in (env or {}).items():
                scoped.setenv(key, value)
            handler = signal.getsignal(signal.SIGTERM)
            try:
                main(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
            finally:
                signal.signal(signal.SIGTERM, handler)
        captured = capfd.readouterr()
        return Ran(code, captured.out, captured.err)

    return run


def test_create_append_ls_inspect_leave_use_rm(polybuild: Polybuild) -> None:
    assert polybuild("create", "--name", "multi", "--platform", "linux/amd64", "--use").out == (
        "multi\n"
    )
    ran = polybuild(
        "create", "--name", "multi", "--append", "--platform", "linux/arm64,linux/arm/v7",
        "--driver-opt", "connect-timeout=5", "ssh://build@arm-host:2222",
    )  # fmt: skip
    assert (ran.code, ran.out) == (0, "multi\n"), ran.err
    listing = polybuild("ls").out.splitlines()
    assert listing[1].split() == ["multi*", "local"]
    assert listing[2].split() == ["\\_", "multi0", "\\_", "local", "running", "0.1.0",
                                  "linux/amd64*"]  # fmt: skip
    assert listing[3].split(None, 5) == ["\\_", "multi1", "\\_", "ssh://build@arm-host:2222",
                                         "inactive", "linux/arm64*, linux/arm/v7*"]  # fmt: skip
    assert listing[4].split() == ["default", "local"]

    lines = polybuild("ls", "--format", "json").out.splitlines()
    documents = [json.loads(line) for line in lines]
    assert [(d["Name"], d["Current"]) for d in documents] == [("multi", True), ("default", False)]
    assert documents[0]["Nodes"][1] == {
        "Name": "multi1",
        "Endpoint": "ssh://build@arm-host:2222",
        "DriverOpts": {"connect-timeout": "5"},
        "Status": "inactive",
        "Platforms": ["linux/arm64", "linux/arm/v7"],
    }

    shown = polybuild("inspect").out
    assert "Name:   multi\nDriver: local\n" in shown
    assert "Endpoint:       ssh://build@arm-host:2222\n" in shown
    assert "Status:         inactive\n" in shown
    assert "Platforms:      linux/arm64*, linux/arm/v7*\n" in shown
    booted = polybuild("inspect", "--bootstrap", "multi")
    assert booted.code == 0, booted.err
    assert "Polybuild version: 0.9.0\n" in booted.out
    assert "Platforms:         linux/arm64*, linux/arm/v7*\n" in booted.out

    assert polybuild("create", "--leave", "--name", "multi", "--node", "multi1").code == 0
    assert "multi1" not in polybuild("ls").out
    assert polybuild("stop").code == 0  # nothing runs between builds; the builder must exist
    assert polybuild("use", "default").code == 0
    assert polybuild("ls").out.splitlines()[-2].split() == ["default*", "local"]
    ran = polybuild("rm", "multi")
    assert (ran.code, ran.err) == (0, "multi removed\n")
    assert "multi" not in polybuild("ls").out


def test_node_names_default_and_can_be_changed(polybuild: Polybuild) -> None:
    generated = polybuild("create", "ssh://a").out.strip()
    assert generated.startswith("builder_") and len(generated) == len("builder_") + 12
    polybuild("create", "--name", "b", "--node", "arm", "ssh://a")
    polybuild("create", "--name", "b", "--append", "ssh://c")
    polybuild("create", "--name", "b", "--node", "arm", "--platform", "linux/arm64", "ssh://d")
    nodes = json.loads(polybuild("ls", "--format", "json").out.splitlines()[0])["Nodes"]
    assert [(n["Name"], n["Endpoint"], n.get("Platforms")) for n in nodes] == [
        ("arm", "ssh://d", ["linux/arm64"]),
        ("b0", "ssh://c", None),
    ]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (("create", "tcp://10.0.0.2:1234"), 2, "over ssh only"),
        (("create", "--name", "1bad"), 2, "invalid builder name '1bad'"),
        (("create", "--name", "default"), 2, "reserved"),
        (("create", "--append", "--name", "nosuch", "ssh://h"), 1, "no builder 'nosuch' to append"),
        (("create", "--append", "ssh://h"), 2, "--append needs --name"),
        (("create", "--leave", "--name", "x"), 2, "--leave needs"),
        (("create", "--driver", "kubernetes"), 2, "unsupported driver"),
        (("inspect", "nosuch"), 1, "no builder 'nosuch' found"),
        (("inspect", "--builder", "nosuch"), 1, "no builder 'nosuch' found"),
        (("use", "nosuch"), 1, "no builder 'nosuch' found"),
        (("stop", "nosuch"), 1, "no builder 'nosuch' found"),
        (("rm",), 1, "failed to remove default: the default builder cannot be removed"),
        (("rm", "nosuch"), 1, "failed to remove nosuch: no builder 'nosuch' found"),
        (("rm", "--all-inactive", "x"), 2, "cannot give builder names"),
        (("ls", "--format", "{{.Nope}}"), 1, "can't evaluate field Nope in type *commands.lsC"),
    ],
)
def test_errors(polybuild: Polybuild, args: tuple[str, ...], code: int, says: str) -> None:
    ran = polybuild(*args)
    assert ran.code == code and says in ran.err, ran


def test_unknown_builder_from_the_environment_is_an_error(polybuild: Polybuild) -> None:
    for args in (("inspect",), ("stop",), ("ls",)):
        ran = polybuild(*args, env={"BUILDX_BUILDER": "nosuch"})
        assert ran.code == 1 and "no builder 'nosuch' found" in ran.err, (args, ran)
    polybuild("create", "--name", "mine")
    ran = polybuild("inspect", env={"BUILDX_BUILDER": "mine"})
    assert ran.out.startswith("Name:   mine\n")


def test_bootstrap_shows_an_unreachable_node_with_its_reason(polybuild: Polybuild) -> None:
    polybuild("create", "--name", "far", "ssh://ok")
    ran = polybuild("create", "--name", "far", "--append", "--bootstrap", "ssh://dead")
    assert ran.code == 13 and "node far1 failed" in ran.err and "Connection refused" in ran.err
    ran = polybuild("inspect", "--bootstrap", "far")
    assert "Status:            running\n" in ran.out
    assert "Error:    node ssh://dead: Connection refused\n" in ran.out
    assert ran.code == 1 and "1 of 2 nodes of far could not be reached" in ran.err


def test_rm_all_inactive_keeps_builders_that_answer(polybuild: Polybuild) -> None:
    polybuild("create", "--name", "gone", "ssh://dead")
    polybuild("create", "--name", "alive", "ssh://ok")
    polybuild("create", "--name", "here")
    ran = polybuild("rm", "--all-inactive", "-f")
    assert (ran.code, ran.err) == (0, "gone removed\n")
    names = [
        json.loads(line)["Name"] for line in polybuild("ls", "--format", "json").out.splitlines()
    ]
    assert names == ["alive", "here", "default"]


def test_inspect_bootstrap_of_a_closed_port_fails_fast_with_the_reason(tmp_path: Path) -> None:
    assert shutil.which("ssh"), "this test needs OpenSSH's client (apt-get install openssh-client)"
    root = tmp_path / "root"
    created = run_cli(root, "create", "--name", "far", "ssh://root@127.0.0.1:1")
    assert created.returncode == 0, created.stderr
    started = time.monotonic()
    ran = run_cli(root, "inspect", "--bootstrap", "far", timeout=60)
    assert time.monotonic() - started < 15
    assert ran.returncode != 0
    assert "Endpoint: ssh://root@127.0.0.1:1\n" in ran.stdout
    error = next(line for line in ran.stdout.splitlines() if line.startswith("Error:"))
    assert "ssh://root@127.0.0.1:1" in error and "refused" in error.lower(), error
    assert "could not be reached" in ran.stderr


def test_a_docker_container_builder_says_what_it_becomes(polybuild: Polybuild) -> None:
    made = polybuild("create", "--name", "ci", "--driver", "docker-container")
    assert made.code == 0 and made.out == "ci\n"
    assert "--driver docker-container is polybuild's own driver here (local)" in made.err
    shown = polybuild("inspect", "ci")
    assert re.search(r"^Driver:\s+local$", shown.out, re.MULTILINE), shown.out
    refused = polybuild("create", "--name", "ci2", "--driver", "docker-container",
                        "--driver-opt", "image=moby/buildkit:latest")  # fmt: skip
    assert refused.code == 2 and "takes no driver options" in refused.err
