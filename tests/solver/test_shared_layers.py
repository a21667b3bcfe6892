"""A COPY whose result cannot depend on the platform is made once for every platform; one
whose base or source differs per platform runs per platform."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from polybuild.graph import ops
from polybuild.platforms import parse
from polybuild.solver.cache import CacheStore
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import SolveOptions, Solver
from polybuild.solver.shared_layers import with_base
from polybuild.testing.worker import FakeExecutor, FakeFileOps, FakeWorker

PLATFORMS = [parse(p) for p in ("linux/amd64", "linux/arm64", "linux/arm/v7")]


class CountingFileOps(FakeFileOps):
    def __init__(self) -> None:
        super().__init__()
        self.copies: list[str] = []

    def copy(
        self, op: ops.Copy, source_root: Path | None, dest_root: Path, ignore: tuple[str, ...]
    ) -> None:
        self.copies.append(str(op.platform))
        super().copy(op, source_root, dest_root, ignore)


def solve(tmp_path: Path, roots: list[ops.Op], jobs: int = 2) -> tuple[list[Chain], list[str]]:
    context = tmp_path / "context"
    context.mkdir(parents=True, exist_ok=True)
    (context / "hello.txt").write_text("hello\n")
    worker = FakeWorker(tmp_path / "root", FakeExecutor())
    file_ops = CountingFileOps()
    solver = Solver(
        worker,
        worker.content,
        CacheStore(worker.root / "cache.db", worker.content),
        SolveOptions(context_dir=context, jobs=jobs),
        base_images={},
        file_ops=file_ops,
    )
    results = asyncio.run(solver.solve_all(list(roots)))
    assert all(isinstance(r, Chain) for r in results)
    return results, file_ops.copies  # type: ignore[return-value]


def copy_onto(base: ops.Op | None, platform: object, dest: str = "/ctx/", **kw: object) -> ops.Copy:
    source = ops.LocalSource("context", platform)  # type: ignore[arg-type]
    return ops.Copy(base, source, ("hello.txt",), dest, platform, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("jobs", [1, 3])
def test_one_copy_for_every_platform(tmp_path: Path, jobs: int) -> None:
    bases = [ops.Mkdir(None, "/etc", p) for p in PLATFORMS]  # a base per platform
    chains, copies = solve(tmp_path, [copy_onto(b, b.platform) for b in bases], jobs)
    assert len(copies) == 1
    assert len({c.layers[-1].diff_id for c in chains}) == 1
    assert len({c.layers[-1].blob for c in chains}) == 1


def test_a_destination_in_the_base_runs_per_platform(tmp_path: Path) -> None:
    bases = [ops.Mkdir(None, "/ctx", p) for p in PLATFORMS]
    _, copies = solve(tmp_path, [copy_onto(b, b.platform) for b in bases])
    assert len(copies) == 3


def test_chown_by_name_runs_per_platform(tmp_path: Path) -> None:
    roots = [copy_onto(None, p, chown="app") for p in PLATFORMS]
    _, copies = solve(tmp_path, roots)  # type: ignore[arg-type]
    assert len(copies) == 3
    numeric = [copy_onto(None, p, chown="1000:1000") for p in PLATFORMS]
    _, copies = solve(tmp_path / "numeric", numeric)  # type: ignore[arg-type]
    assert len(copies) == 1


def test_a_per_platform_source_runs_per_platform(tmp_path: Path) -> None:
    roots = []
    for p, mode in zip(PLATFORMS, ("0644", "0600", "0755"), strict=True):
        stage = copy_onto(None, p, dest="/x/", chmod=mode)  # a different result per platform
        roots.append(ops.Copy(None, stage, ("x/hello.txt",), "/ctx/", p))
    _, copies = solve(tmp_path, roots)  # type: ignore[arg-type]
    assert len(copies) == 6  # three stages, then three copies of their (different) files


def test_with_base_sees_links_and_existing_paths(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "usr" / "local").mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "file").write_text("x")
    os.symlink("/etc", root / "link")
    assert with_base("k", root, "/usr/local/new") is not None
    assert with_base("k", root, "/usr/local") is None  # exists
    assert with_base("k", root, "/link/new") is None  # through a link
    assert with_base("k", root, "/file/new") is None  # under a file
    lower = tmp_path / "lower"  # a layer below that had /usr/local/new, deleted since
    (lower / "usr" / "local").mkdir(parents=True)
    (lower / "usr" / "local" / "new").write_text("whited out above")
    assert with_base("k", root, "/usr/local/new", [tmp_path / "other"]) is not None
    assert with_base("k", root, "/usr/local/new", [tmp_path / "other", lower]) is None
    assert with_base("k", root, "/usr/local/new/deeper", [lower]) is None
    os.utime(root / "usr", ns=(1, 1))
    first = with_base("k", root, "/usr/local/new")
    os.utime(root / "usr", ns=(2, 2))
    assert with_base("k", root, "/usr/local/new") != first  # the base's directories count
