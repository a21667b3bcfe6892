"""kill -9 at random moments of build, pull, push, load, import, prune and of one of two
concurrent builds: the next command succeeds and the data root is whole and clean.

The CI subset: 31 trials. benchmarks/reliability.py runs the same trials by the hundred.
"""

from __future__ import annotations

import random

import pytest

from tests.reliability.conftest import SEED
from tests.reliability.harness import Trial, run_trial, timed
from tests.reliability.scenarios import World, concurrent_trial, scenarios, timed_concurrent

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
