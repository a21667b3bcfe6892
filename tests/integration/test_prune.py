"""Disk space: `rmi` keeps the build cache, `prune` frees it, and never under a running build."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild.runtime import Runtime
from tests.conftest import import_busybox, require_root, require_tool
from tests.conftest import run_cli as polybuild

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

DOCKERFILE = "FROM busybox\nRUN echo built > /built\nRUN --mount=type=cache,target=/c touch /c/x\n"


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    require_root()
    require_tool("runc")
    data = tmp_path / "root"
    import_busybox(data, ("amd64",))
    yield data


def ran_steps(stderr: str) -> int:
    """The Dockerfile steps that ran (not BuildKit's [internal], FROM and export steps)."""
    vertices = [
        v
        for line in stderr.splitlines()
        if line.startswith("{")
        for v in json.loads(line).get("vertexes") or []
        if v.get("completed") and re.search(r"\] (RUN|COPY|ADD) ", v.get("name", ""))
    ]
    return sum(not v.get("cached") for v in vertices)


def test_rmi_keeps_the_build_cache_and_prune_frees_it(root: Path, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    build = ("build", "-t", "app", "--load", "--progress=rawjson", str(ctx))
    assert ran_steps(polybuild(root, *build).stderr) == 2
    assert polybuild(root, "rmi", "app").returncode == 0
    assert ran_steps(polybuild(root, *build).stderr) == 0  # the cache survived rmi

    assert polybuild(root, "run", "app", "cat", "/built").stdout == "built\n"
    assert polybuild(root, "rmi", "app").returncode == 0

    def unpacked() -> int:
        return len([p for p in (root / "layers").iterdir() if p.is_dir()])

    assert unpacked() == 3  # busybox's layer and the two RUN layers
    proc = polybuild(root, "prune", "--force", "--all")
    assert proc.returncode == 0, proc.stderr
    assert "Removed 2 cache records" in proc.stdout and "1 cache mounts" in proc.stdout
    assert unpacked() == 1  # only busybox's, which a stored image still uses
    # The stored images still run, and the next build runs its steps again.
    assert polybuild(root, "run", "busybox", "echo", "ok").stdout == "ok\n"
    assert ran_steps(polybuild(root, *build).stderr) == 2


def test_prune_is_refused_while_the_data_root_is_in_use(root: Path) -> None:
    with Runtime(root).in_use():
        proc = polybuild(root, "prune", "--force")
    assert proc.returncode != 0
    assert "is using" in proc.stderr and "nothing was changed" in proc.stderr
    proc = polybuild(root, "prune", stdin="")
    assert proc.returncode == 2 and "--force" in proc.stderr


def test_prune_removes_what_remote_builds_keep_and_waits_for_a_solve(tmp_path: Path) -> None:
    """A node's context caches and a client's context digests go; never under a solve."""
    import asyncio

    from polybuild.imagebuild.remote_node import LocalBackend
    from polybuild.remote.messages import Solve
    from polybuild.remote.node_solve import handle_solve

    root = tmp_path / "root"
    kept = [root / "remote" / name / "entry" for name in ("context", "contexts", "context-hashes")]
    for path in kept:
        path.parent.mkdir(parents=True)
        path.write_text("x")
    backend = LocalBackend(Runtime(root))

    class Held(Exception):
        pass

    class Channel:  # the solve's first step: prune now, while the solve holds the root
        async def send(self, message: object) -> None:
            proc = polybuild(root, "prune", "--force")
            assert proc.returncode != 0 and "is using" in proc.stderr, proc.stderr
            raise Held

    solve = Solve(1, b"FROM scratch\n", "Dockerfile", ("linux/amd64",), ())
    with pytest.raises(Held):
        asyncio.run(handle_solve(Channel(), solve, backend))  # type: ignore[arg-type]
    assert all(path.exists() for path in kept)
    proc = polybuild(root, "prune", "--force")
    assert proc.returncode == 0, proc.stderr
    assert not any(path.exists() for path in kept)
