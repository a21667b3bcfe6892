"""Reliability: kill -9 polybuild commands at random moments and count what breaks.

Run (as root, with runc, QEMU for arm64 and Debian's docker-registry installed):

    .venv/bin/python benchmarks/reliability.py [--trials 300] [--seed N] [--scenario NAME]...

Each trial starts a command on its scenario's data root, sends SIGKILL to the polybuild
process at a random moment of the command's usual duration (measured once, unkilled, first),
runs the next command (the same one again; a build after `prune`), then checks: the next
command succeeded, no mount under the data root, no runc container, nothing left in TMPDIR
or beside an output file, `polybuild check` finds nothing, and every unpacked layer equals a
fresh unpack of its blob. Scenarios: a two-platform build (RUN, COPY) exported with --load
and with -o type=oci, pull, push (to a local docker-registry), load, import, prune, and two
builds of different projects on one data root with one of them killed.

Prints each trial that had a problem as it happens, one line per scenario, and a total such
as "300 trials (250 killed mid-command) in 880s: 0 corrupt, 0 leftovers, 0 failed next
commands, 0 failed checks". Exit status 1 when any trial had a problem.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.reliability.harness import Lab, Trial, run_trial, timed  # noqa: E402
from tests.reliability.scenarios import (  # noqa: E402
    World,
    concurrent_trial,
    make_world,
    scenarios,
    timed_concurrent,
)

CONCURRENT = "concurrent builds"


def classify(problem: str) -> str:
    """corrupt (a blob, image, cache record, layer or output is wrong), leftovers, a failed
    next command, or a failed check."""
    if problem.startswith(("next command", "concurrent build")):
        return "failed next commands"
    if problem.startswith("check failed"):
        return "failed checks"
    if problem.startswith(("check: blob", "check: image", "check: cache", "check: layer")):
        return "corrupt"
    if problem.startswith(("image ", "/")):  # wrong files in an image, a broken OCI tarball
        return "corrupt"
    return "leftovers"


@contextlib.contextmanager
def registry(base: Path) -> Iterator[str]:
    from tests.registry.conftest import run_registry

    with run_registry(base / "registry") as running:
        yield running.host


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=300, help="total trials (default 300)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument(
        "--scenario", action="append", default=[], help="only these scenarios (repeatable)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    print(f"seed {seed}")
    base = Path(tempfile.mkdtemp(prefix="polybuild-reliability-"))
    try:
        with registry(base) as host:
            world = make_world(base / "world", host)
            return run(world, args.trials, args.scenario, rng)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def run(world: World, total: int, only: list[str], rng: random.Random) -> int:
    table = scenarios(world)
    names = [*table, CONCURRENT]
    names = [n for n in names if not only or n in only]
    if not names:
        print(f"no such scenario; choose from: {', '.join([*table, CONCURRENT])}")
        return 2
    labs: dict[str, Lab] = {}
    durations: dict[str, float] = {}
    for name in names:
        empty = table[name][1] if name in table else False
        labs[name] = world.lab(name.replace(" ", "-").replace("/", "-"), empty=empty)
        if name == CONCURRENT:
            durations[name] = timed_concurrent(labs[name], world)
        else:
            durations[name] = timed(labs[name], table[name][0])
    trials: dict[str, list[Trial]] = defaultdict(list)
    started = time.monotonic()
    for number in range(1, total + 1):
        name = names[(number - 1) % len(names)]
        lab, duration = labs[name], durations[name]
        if name == CONCURRENT:
            trial = concurrent_trial(lab, world, number, rng, duration)
        else:
            trial = run_trial(lab, table[name][0], number, rng, duration)
        trials[name].append(trial)
        if number % 25 == 0:
            print(f"... {number} trials, {time.monotonic() - started:.0f}s", flush=True)
        if trial.problems:
            print(f"trial {number} ({name}, killed at {trial.delay:.2f}s): ", end="")
            print("; ".join(trial.problems), flush=True)
    elapsed = time.monotonic() - started
    counts: dict[str, int] = defaultdict(int)
    print()
    for name in names:
        done = trials[name]
        bad = [t for t in done if t.problems]
        killed = sum(t.killed for t in done)
        print(
            f"{name:20} {len(done):4} trials ({killed} killed mid-command, usual duration "
            f"{durations[name]:.1f}s): {len(bad)} with problems"
        )
        for trial in bad:
            for kind in {classify(p) for p in trial.problems}:
                counts[kind] += 1
    everything = [t for done in trials.values() for t in done]
    print(
        f"\n{len(everything)} trials ({sum(t.killed for t in everything)} killed mid-command) "
        f"in {elapsed:.0f}s: {counts['corrupt']} corrupt, {counts['leftovers']} leftovers, "
        f"{counts['failed next commands']} failed next commands, "
        f"{counts['failed checks']} failed checks"
    )
    return 1 if any(t.problems for t in everything) else 0


if __name__ == "__main__":
    sys.exit(main())
