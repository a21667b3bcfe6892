"""What the tty view costs: CPU of the 10 Hz redraw while a build's steps print output.

    .venv/bin/python -m benchmarks.tty_view [--seconds 5]

A scripted build of N steps (most finished, three running and each printing 20 lines a
second, as a compiler does) is fed to each renderer for a few seconds; the process's CPU
time (user + sys) is measured, minus that of the same script fed to no renderer. Peers in the
same run: the plain renderer (BuildKit's plain output). Goal (issue 17): the view costs
under 2% of one core, which is under 2% of any build that keeps a core busy.
"""

from __future__ import annotations

import argparse
import io
import resource
import time
from collections.abc import Callable

from polybuild.platforms import parse
from polybuild.progress import NullProgress, PlainRenderer, Progress
from polybuild.progress.events import VertexCompleted, VertexLog, VertexStarted
from polybuild.progress.tty import TTYRenderer

GOAL_PERCENT = 2.0
PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")


class _Terminal(io.StringIO):
    """A terminal that swallows what is drawn (the drawing is what is measured)."""

    def write(self, text: str) -> int:
        return len(text)

    def isatty(self) -> bool:
        return True


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _script(sink: Progress, steps: int, seconds: float) -> float:
    """Feed a build of `steps` steps for `seconds`; the CPU seconds it took."""
    now = time.time()
    for n in range(steps - 3):
        platform = PLATFORMS[n % 3]
        name = f"[{platform} build {n}/{steps}] RUN ./step {n}"
        sink.emit(VertexStarted(f"v{n}", name, now, parse(platform), n % 3 != 0))
        sink.emit(VertexCompleted(f"v{n}", now + 0.5, cached=n % 2 == 0))
    for n, platform in enumerate(PLATFORMS):
        name = f"[{platform} build {steps}/{steps}] RUN make -j2"
        sink.emit(VertexStarted(f"r{n}", name, now, parse(platform), n != 0))
    start, cpu, line = time.monotonic(), _cpu(), 0
    while time.monotonic() - start < seconds:
        for n in range(3):
            text = f"cc -O2 -Wall -c src/file{line}.c -o obj/file{line}.o\n".encode()
            sink.emit(VertexLog(f"r{n}", text, time.time()))
        line += 1
        time.sleep(0.05)
    used = _cpu() - cpu
    sink.close()
    return used


def _tty() -> Progress:
    return TTYRenderer(_Terminal(), desc="local:default", size=lambda: (120, 40))


def _plain() -> Progress:
    return PlainRenderer(io.StringIO())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    renderers: dict[str, Callable[[], Progress]] = {
        "none": NullProgress,
        "plain": _plain,
        "tty": _tty,
    }
    print(f"{'steps':>6} {'renderer':>8} {'CPU s':>7} {'% of a core':>12}  goal")
    for steps in (20, 100, 300):
        base = _script(NullProgress(), steps, args.seconds)
        for name, make in renderers.items():
            used = base if name == "none" else _script(make(), steps, args.seconds)
            share = max(used - base, 0.0) / args.seconds * 100
            verdict = "" if name != "tty" else ("pass" if share < GOAL_PERCENT else "FAIL")
            print(f"{steps:>6} {name:>8} {used:>7.3f} {share:>11.2f}%  {verdict}")


if __name__ == "__main__":
    main()
