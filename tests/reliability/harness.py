"""Kill -9 a polybuild command at a random moment, run the next command, and list whatever is
then wrong with the data root: the kill-trial loop shared by tests/reliability and
benchmarks/reliability.py."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.check.leftovers import mounts_under

COMMAND_TIMEOUT = 300.0


@dataclass
class Lab:
    """One data root and the private directories its commands use (TMPDIR, outputs)."""

    root: Path
    work: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def tmpdir(self) -> Path:
        return self.work / "tmpdir"

    def environ(self) -> dict[str, str]:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            "POLYBUILD_ROOT": str(self.root),
            "TMPDIR": str(self.tmpdir),
            # Deterministic layers: a step run again yields the same diff-id, so a killed
            # process's half-made state would be picked up again (as it is in real use).
            "SOURCE_DATE_EPOCH": "0",
            **self.env,
        }

    def start(self, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "polybuild", *argv],
            env=self.environ(),
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def run(self, *argv: str, timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "polybuild", *argv],
            env=self.environ(),
            cwd=self.work,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def ok(self, *argv: str) -> str:
        """Run a command that must succeed; its stdout."""
        proc = self.run(*argv)
        if proc.returncode != 0:
            raise AssertionError(f"polybuild {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
        return proc.stdout


@dataclass(frozen=True)
class Scenario:
    """A command to kill. `prepare` gives it work to do in trial n; `command` is its argv;
    `next_command` is what the user runs next (default: the same command again), and
    `check_result` looks at what it made."""

    name: str
    command: Callable[[Lab, int], list[str]]
    prepare: Callable[[Lab, int], None] = lambda lab, n: None
    next_command: Callable[[Lab, int], list[str]] | None = None
    # What the next command made, checked: problems found (e.g. an image's files are wrong).
    check_result: Callable[[Lab, int], list[str]] = lambda lab, n: []


@dataclass(frozen=True)
class Trial:
    scenario: str
    number: int
    delay: float
    killed: bool  # False when the command had finished before the kill came
    problems: tuple[str, ...]


def kill_at(proc: subprocess.Popen[bytes], delay: float) -> bool:
    """SIGKILL the process `delay` seconds in (as `kill -9`: the process, not its group);
    False when it had already exited."""
    try:
        proc.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        return True
    proc.communicate()
    return False


def timed(lab: Lab, scenario: Scenario) -> float:
    """Run the scenario's command to completion once (it must succeed): the duration the
    kill moments are drawn from."""
    scenario.prepare(lab, 0)
    started = time.monotonic()
    lab.ok(*scenario.command(lab, 0))
    return time.monotonic() - started


def run_trial(
    lab: Lab, scenario: Scenario, number: int, rng: random.Random, duration: float
) -> Trial:
    """Kill the command at a random moment of its usual duration, run the next command, and
    verify the data root."""
    scenario.prepare(lab, number)
    delay = rng.uniform(0.0, duration)
    killed = kill_at(lab.start(scenario.command(lab, number)), delay)
    argv = (scenario.next_command or scenario.command)(lab, number)
    proc = lab.run(*argv)
    problems: list[str] = []
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        problems.append(f"next command `polybuild {' '.join(argv)}` failed: {tail}")
    else:
        problems += scenario.check_result(lab, number)
    problems += verify(lab)
    return Trial(scenario.name, number, delay, killed, tuple(problems))


def verify(lab: Lab) -> list[str]:
    """What is wrong once the next command has run: mounts, runc containers, temp files and
    directories, and anything `polybuild check --deep` finds (corrupt blobs, images missing
    content, void cache records, leftovers, unpacked layers that differ from their blobs)."""
    problems = [f"mount left: {point}" for point in mounts_under(lab.root)]
    runc_root = lab.root / "containers" / "runc"
    if runc_root.exists():
        listed = subprocess.run(
            ["runc", "--root", str(runc_root), "list", "-q"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.split()
        problems += [f"runc container left: {name}" for name in listed]
    problems += [f"temp left in TMPDIR: {p.name}" for p in sorted(lab.tmpdir.iterdir())]
    problems += [f"temp left beside an output: {p.name}" for p in sorted(lab.work.glob(".*.tmp"))]
    check = lab.run("check", "--deep")
    for line in check.stdout.splitlines():
        if not line.startswith(("note:", "Checked ")):
            problems.append(f"check: {line}")
    if check.returncode != 0 and not problems:
        problems.append(f"check failed: {check.stderr.strip()[-500:]}")
    return problems
