"""kill -9 at random moments of build, pull, push, load, import, prune and of one of two
concurrent builds: the next command succeeds and the data root is whole and clean.

The CI subset: 30 trials. benchmarks/reliability.py runs the same trials by the hundred.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from tests.reliability.conftest import SEED
from tests.reliability.harness import Trial, run_trial, timed
from tests.reliability.scenarios import (
    World,
    build_argv,
    concurrent_trial,
    scenarios,
    timed_concurrent,
)

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

TRIALS = {
    "build --load": 5,
    "build -o type=oci": 4,
    "pull": 4,
    "push": 3,
    "load": 4,
    "import": 4,
    "prune": 3,
}
CONCURRENT_TRIALS = 3


def report(trials: list[Trial]) -> str:
    bad = [t for t in trials if t.problems]
    lines = [f"seed {SEED!r}: {len(bad)} of {len(trials)} trials left problems"]
    for trial in bad:
        lines.append(f"  trial {trial.number}, killed at {trial.delay:.2f}s:")
        lines += [f"    {problem}" for problem in trial.problems]
    return "\n".join(lines)


@pytest.mark.parametrize("name", list(TRIALS))
def test_a_killed_command_leaves_the_data_root_whole(world: World, name: str) -> None:
    scenario, empty = scenarios(world)[name]
    lab = world.lab(name.replace(" ", "-").replace("/", "-"), empty=empty)
    duration = timed(lab, scenario)
    rng = random.Random(f"{SEED}-{name}")
    trials = [run_trial(lab, scenario, n, rng, duration) for n in range(1, TRIALS[name] + 1)]
    assert not any(t.problems for t in trials), report(trials)


def test_one_of_two_concurrent_builds_killed(world: World) -> None:
    lab = world.lab("concurrent")
    duration = timed_concurrent(lab, world)
    rng = random.Random(f"{SEED}-concurrent")
    trials = [
        concurrent_trial(lab, world, n, rng, duration) for n in range(1, CONCURRENT_TRIALS + 1)
    ]
    assert not any(t.problems for t in trials), report(trials)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_the_next_build_removes_what_a_kill_in_a_narrow_window_left(world: World) -> None:
    """Temp files and directories renamed into place within microseconds: the random kills
    rarely hit those windows, so their leftovers are made here, under a dead pid."""
    lab = world.lab("narrow-windows")
    pid = dead_pid()
    leftovers = [
        lab.work / f".app.tar.{pid}-0123abcd.tmp",  # an OCI tarball being written
        lab.work / f".out.{pid}-4567cdef.tmp",  # a local output being staged
        lab.root / f".images.json.{pid}-89abcdef.tmp",  # the image list being replaced
        lab.root / "inline" / f"{'a' * 64}.tmp-{pid}-0123abcd",  # heredoc files
        lab.root / "cache-mounts" / f"{'b' * 32}.tmp-{pid}",  # a cache mount being made
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.name.startswith("."):
            path.write_bytes(b"half written")
        else:
            path.mkdir()
            (path / "half").write_text("x")
    live = lab.work / f".app.tar.{os.getpid()}-89abcdef.tmp"  # a live process's: kept
    live.write_bytes(b"in use")
    lab.ok(*build_argv(world.app_context, 0, ("-o", f"type=oci,dest={lab.work / 'app.tar'}")))
    lab.ok(*build_argv(world.app_context, 0, ("-o", f"type=local,dest={lab.work / 'out'}")))
    lab.ok(*build_argv(world.app_context, 0, ("-t", "app", "--load")))
    assert [p for p in leftovers if p.exists()] == []
    assert live.exists()
