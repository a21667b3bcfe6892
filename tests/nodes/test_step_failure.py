"""A RUN that fails on an ssh node reports as the same failure on this machine: the failed
step's `------` block (its last log lines, from the node's progress), the Dockerfile excerpt
(carried by the node's error message) and buildx's `ERROR: failed to build: failed to
solve: ...` line, exit status 1; the hint names the node."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from polybuild.errors import StepFailedError
from polybuild.remote.messages import Error, decode, encode
from polybuild.remote.server import error_reply
from polybuild.remote.session import Session
from tests.nodes.hosts import SshHosts
from tests.nodes.test_remote_build import Client, builder_on, context

TIME = re.compile(r"^\d+\.\d+ ", re.MULTILINE)
LOOP = "for i in 1 2 3 4 5 6 7 8 9 10 11; do echo line $i; done"
DOCKERFILE = f"FROM busybox\n# a comment\nRUN echo zero; \\\n  {LOOP}; exit 3\nRUN true\n"


def report(stderr: str) -> str:
    """From the failed step's block on, log times as `T`."""
    at = stderr.find("------\n")
    assert at >= 0, stderr
    return TIME.sub("T ", stderr[at:])


def received(error: Error) -> StepFailedError:
    """What the client's session makes of `error` from node `[far0]` (through the codec)."""
    link: Any = SimpleNamespace(endpoint="ssh://far")
    message = decode(encode(error))
    assert isinstance(message, Error)
    made = Session(link, "[far0]")._step_failed(message, message.message, None)
    assert isinstance(made, StepFailedError)
    return made


def test_a_failed_steps_excerpt_and_lines_cross_the_wire() -> None:
    failed = StepFailedError("process did not complete successfully: exit code: 3")
    failed.step, failed.lines = "[2/2] RUN exit 3", (2, 2)
    failed.excerpt = "Dockerfile:2\n----\n   2 | >>> RUN exit 3\n----\n"
    got = received(error_reply(7, failed))
    assert (str(got), got.step, got.lines, got.excerpt) == (
        str(failed),
        failed.step,
        failed.lines,
        failed.excerpt,
    )
    assert (got.node, got.hint) == ("far0", "the build ran on node far0 (ssh://far)")


def test_a_hostile_excerpt_is_shown_printable_and_bounded() -> None:
    lines = "".join(f"\x1b[2J{n}\n" for n in range(100_000))
    got = received(Error("boom", id=1, kind="StepFailedError", excerpt=lines))
    assert "\x1b" not in got.excerpt and got.excerpt.startswith("?[2J0\n")
    assert len(got.excerpt) <= (64 << 10) + 1


@pytest.mark.root
@pytest.mark.integration
def test_a_failed_step_on_an_ssh_node_reports_as_on_this_machine(
    test_host: SshHosts, tmp_path: Path
) -> None:
    host = test_host("stepfail")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "farfail")
    ctx = context(tmp_path, DOCKERFILE)
    flags = ("--platform", "linux/amd64", "--progress", "plain")
    here = client.run("build", "--builder", "default", *flags, str(ctx))
    there = client.run("build", "--builder", "farfail", *flags, str(ctx))
    assert here.returncode == 1, here.stderr
    assert there.returncode == 1, there.stderr
    local = report(here.stderr)
    assert "   4 | >>>   for i in" in local and "T line 11\n------\n" in local, here.stderr
    assert "ERROR: failed to build: failed to solve: process " in local, here.stderr
    remote = report(there.stderr)  # the step named as here: no node, no platform
    where = f"hint: the build ran on node farfail0 ({host.endpoint})\n"
    assert remote == local + where, there.stderr
