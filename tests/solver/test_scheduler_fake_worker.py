"""The solver on a FakeWorker: memoisation, caching, failure and cancellation, no root."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from polybuild.errors import ExecutionError, StepFailedError
from polybuild.executor import Process
from polybuild.graph import ops
from polybuild.image.content import ContentStore
from polybuild.platforms import parse
from polybuild.progress import ProgressWriter, Recorder, VertexLog
from polybuild.solver.cache import CacheStore
from polybuild.solver.results import Chain
from polybuild.solver.scheduler import SolveOptions, Solver
from polybuild.testing.worker import FakeExecutor, FakeFileOps, FakeWorker

AMD64 = parse("linux/amd64")
ARM64 = parse("linux/arm64")


def write_file(name: str, text: str) -> object:
    def script(rootfs: Path, process: Process) -> tuple[int, bytes]:
        (rootfs / name).write_text(text)
        return 0, f"wrote {name}\n".encode()

    return script


def make_solver(worker: FakeWorker, context: Path, **options: object) -> Solver:
    cache = CacheStore(worker.root / "cache.db", worker.content)
    return Solver(
        worker,
        worker.content,
        cache,
        SolveOptions(context_dir=context, **options),  # type: ignore[arg-type]
        base_images={},
        file_ops=FakeFileOps(),
    )


def run(solver: Solver, *roots: ops.Op | None) -> list[Chain]:
    results = asyncio.run(solver.solve_all(list(roots)))
    assert all(isinstance(r, Chain) for r in results)
    return results  # type: ignore[return-value]


def exec_op(base: ops.Op | None, argv: str, platform: object = AMD64) -> ops.Exec:
    return ops.Exec(base, tuple(argv.split()), (), "/", "", platform)  # type: ignore[arg-type]


def layer_files(worker: FakeWorker, chain: Chain) -> list[set[str]]:
    paths = worker.unpacked([(layer.blob, layer.diff_id) for layer in chain.layers])
    return [{p.name for p in path.iterdir()} for path in paths]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    directory = tmp_path / "context"
    directory.mkdir()
    (directory / "hello.txt").write_text("hello\n")
    return directory


def test_layers_are_built_from_handlers_without_root(tmp_path: Path, context: Path) -> None:
    worker = FakeWorker(tmp_path / "root", FakeExecutor(write_file("ran", "yes")))  # type: ignore[arg-type]
    mkdir = ops.Mkdir(None, "/work", AMD64)
    copy = ops.Copy(mkdir, ops.LocalSource("context", AMD64), ("hello.txt",), "/work/", AMD64)
    run_step = exec_op(copy, "sh -c true")
    (chain,) = run(make_solver(worker, context), run_step)
    assert len(chain.layers) == 3
    assert layer_files(worker, chain) == [{"work"}, {"work"}, {"ran"}]
    (process,) = worker.executor.processes
    assert process.args == ("sh", "-c", "true")
    assert process.hostname == "buildkitsandbox"


def test_an_op_shared_by_two_platforms_runs_once(tmp_path: Path, context: Path) -> None:
    worker = FakeWorker(tmp_path / "root")
    shared = exec_op(None, "make tool")  # e.g. a FROM --platform=$BUILDPLATFORM stage
    amd = exec_op(shared, "use amd64")
    arm = exec_op(shared, "use arm64")
    solver = make_solver(worker, context)
    first, second = run(solver, amd, arm)
    assert first.layers[0] == second.layers[0]
    assert [p.args for p in worker.executor.processes].count(("make", "tool")) == 1
    assert solver.executed.count(shared.digest) == 1


def test_second_solve_hits_the_cache(tmp_path: Path, context: Path) -> None:
    worker = FakeWorker(tmp_path / "root", FakeExecutor(write_file("f", "1")))  # type: ignore[arg-type]
    step = exec_op(ops.Mkdir(None, "/d", AMD64), "build")
    (first,) = run(make_solver(worker, context), step)
    solver = make_solver(worker, context)
    (second,) = run(solver, step)
    assert second.layers == first.layers
    assert solver.executed == []
    assert len(worker.executor.processes) == 1


def test_a_changed_context_file_misses_from_the_copy(tmp_path: Path, context: Path) -> None:
    worker = FakeWorker(tmp_path / "root")
    base = exec_op(None, "base")
    copy = ops.Copy(base, ops.LocalSource("context", AMD64), ("hello.txt",), "/", AMD64)
    after = exec_op(copy, "after")
    run(make_solver(worker, context), after)
    (context / "hello.txt").write_text("changed\n")
    solver = make_solver(worker, context)
    run(solver, after)
    assert solver.executed == [copy.digest, after.digest]


def test_a_failed_step_says_which_and_shows_its_output(tmp_path: Path, context: Path) -> None:
    def fail(rootfs: Path, process: Process) -> tuple[int, bytes]:
        return 3, b"something broke\n"

    worker = FakeWorker(tmp_path / "root", FakeExecutor(fail))
    recorder = Recorder()
    solver = make_solver(worker, context)
    solver.progress = ProgressWriter(recorder)
    op = exec_op(None, "false")
    with pytest.raises(StepFailedError) as caught:
        run(solver, op)
    # BuildKit's message; the step's name on the error, its output in its progress
    assert caught.value.message == 'process "false" did not complete successfully: exit code: 3'
    assert caught.value.step == (op.description or op.kind)
    logs = b"".join(e.data for e in recorder.events if isinstance(e, VertexLog))
    assert logs == b"something broke\n"


def test_a_failure_stops_the_other_platforms_containers(tmp_path: Path, context: Path) -> None:
    def script(rootfs: Path, process: Process) -> tuple[int, bytes]:
        return (1 if process.args == ("fail",) else 0), b""

    worker = FakeWorker(tmp_path / "root", FakeExecutor(script))
    with pytest.raises(ExecutionError):
        run(make_solver(worker, context), exec_op(None, "fail"), exec_op(None, "ok", ARM64))
    assert worker.executor.kills >= 1


def test_content_store_holds_every_layer_blob(tmp_path: Path, context: Path) -> None:
    worker = FakeWorker(tmp_path / "root", FakeExecutor(write_file("x", "x")))  # type: ignore[arg-type]
    (chain,) = run(make_solver(worker, context), exec_op(None, "x"))
    store: ContentStore = worker.content
    assert all(store.exists(layer.blob) for layer in chain.layers)
