"""kill -9 at random moments of build, pull, push, load, import, prune and of one of two
concurrent builds: the next command succeeds and the data root is whole and clean.

The CI subset: 31 trials. benchmarks/reliability.py runs the same trials by the hundred.
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

TRIALS = {
    "build --load": 5,
    "build -o type=oci": 4,
    "pull": 4,
    "push": 3,
    "load": 4,
    "import": 4,
    "prune": 3,
}
CONCURRENT_TRIALS = 4


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
    duration = timed(lab, scenario, 0)
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


def test_an_export_removes_what_a_killed_export_left_beside_its_output(world: World) -> None:
    """An output file or directory is written under a temp name beside it and renamed; a
    build killed in between leaves that temp, which the next export to it removes (the kill
    window is too small for the random trials to hit reliably)."""
    lab = world.lab("export-temps")
    dead = subprocess.Popen(["true"])
    dead.wait()
    leftovers = [
        lab.work / f".app.tar.{dead.pid}-0123abcd.tmp",
        lab.work / f".out.{dead.pid}-4567cdef.tmp",
    ]
    leftovers[0].write_bytes(b"half a tarball")
    leftovers[1].mkdir()
    (leftovers[1] / "half").write_text("x")
    mine = lab.work / f".app.tar.{os.getpid()}-89abcdef.tmp"  # a live process's: kept
    mine.write_bytes(b"in use")
    lab.ok(*build_argv(world.app_context, 0, ("-o", f"type=oci,dest={lab.work / 'app.tar'}")))
    lab.ok(*build_argv(world.app_context, 0, ("-o", f"type=local,dest={lab.work / 'out'}")))
    assert [p for p in leftovers if p.exists()] == []
    assert mine.exists()
