"""A build that fails on a BuildKit daemon node reports as buildx does for that daemon: the
failed step's `------` block from the daemon's own progress, the Dockerfile excerpt from the
gRPC status details, then `ERROR: failed to build: failed to solve: ...` and exit status 1.
Compared with `buildctl build --progress=plain` of the same Dockerfile on the same daemon
(buildctl prints `error: failed to solve:`; buildx adds `failed to build:`)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon
from tests.conftest import SHARED, import_busybox, require, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixture)

pytestmark = [pytest.mark.root, pytest.mark.integration]

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"
TIME = re.compile(r"^\d+\.\d+ ", re.MULTILINE)


@pytest.fixture(scope="module")
def daemon_builder(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BuildkitDaemon, Path, str]]:
    """The daemon (pulling busybox from the test registry), a client data root with a
    builder `bkfail` whose one node is that daemon, and the base image's name."""
    require_root()
    require(BUILDCTL.is_file(), f"buildctl is not at {BUILDCTL}")
    root = tmp_path_factory.mktemp("bk-failure") / "root"
    base = f"{registry.host}/library/busybox:latest"
    import_busybox(root, ("amd64",), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    created = run_cli(root, "create", "--name", "bkfail", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    yield daemon, root, base


def report(stderr: str) -> str:
    """What follows the progress: from the first `------` on, log times as `T`."""
    at = stderr.find("------\n")
    assert at >= 0, stderr
    return TIME.sub("T ", stderr[at:])


def both(
    setup: tuple[BuildkitDaemon, Path, str], tmp_path: Path, dockerfile: str
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """(buildctl's run, polybuild's run) of `dockerfile` on the daemon."""
    daemon, root, base = setup
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile.format(base=base))
    args = [str(BUILDCTL), "--addr", daemon.address, "build", "--progress", "plain",
            "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
            "--local", f"dockerfile={ctx}"]  # fmt: skip
    theirs = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    ours = run_cli(root, "build", "--builder", "bkfail", "--progress", "plain",
                   "-o", f"type=oci,dest={tmp_path / 'out.tar'}", str(ctx))  # fmt: skip
    return theirs, ours


def test_a_failed_run_prints_buildkits_block_excerpt_and_error_line(
    daemon_builder: tuple[BuildkitDaemon, Path, str], tmp_path: Path
) -> None:
    # more lines than the block keeps (10), over a continuation line (one stream: the order
    # of two streams' lines varies from run to run)
    loop = "for i in 1 2 3 4 5 6 7 8 9 10 11; do echo line $i; done"
    dockerfile = "FROM {base}\n# a comment\nRUN echo zero; \\\n  " + loop + "; exit 3\nRUN true\n"
    theirs, ours = both(daemon_builder, tmp_path, dockerfile)
    assert theirs.returncode == 1, theirs.stderr
    assert ours.returncode == 1, ours.stderr
    expected = report(theirs.stderr).replace(
        "\nerror: failed to solve: ", "\nERROR: failed to build: failed to solve: "
    )
    mine = report(ours.stderr)  # the step's name as the daemon gave it: no node in it
    where = f"hint: the build ran on BuildKit node bkfail0 ({daemon_builder[0].address})\n"
    assert mine == expected + where, ours.stderr
    assert "   4 | >>>   for i in" in mine and "T line 11\n------\n" in mine


def test_a_dockerfile_the_daemon_refuses_prints_its_excerpt_and_error_line(
    daemon_builder: tuple[BuildkitDaemon, Path, str], tmp_path: Path
) -> None:
    theirs, ours = both(daemon_builder, tmp_path, "FROM {base}\nRUNN echo\n")
    assert theirs.returncode == 1 and ours.returncode == 1, ours.stderr
    at = theirs.stderr.index("Dockerfile:2\n")
    expected = theirs.stderr[at:].replace(
        "\nerror: failed to solve: ", "\nERROR: failed to build: failed to solve: "
    )
    assert "unknown instruction: RUNN" in expected
    at = ours.stderr.index("Dockerfile:2\n")
    assert ours.stderr[at:].startswith(expected), ours.stderr
