"""The reference workloads of issue 15's table: Dockerfiles on a busybox base named at run
time, the contexts they copy, and the goal ratios polybuild/BuildKit for cold and warm builds."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
KIB = 1 << 10

# No `# syntax=` line: BuildKit would pull docker/dockerfile:1 from Docker Hub for it. The
# seed's ARGs are declared: BuildKit expands only declared ARGs in a stage.
SEED = """\
FROM --platform=$BUILDPLATFORM {base} AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM {base}
COPY --from=build /log /log
"""

# About 0.25 s natively, 3-5 s under QEMU per emulated platform.
EMULATED_CPU = """\
FROM {base}
RUN awk 'BEGIN {{ s = 0; for (i = 0; i < 1000000; i++) s = (s + i * i) % 1000003; print s }}' \\
    > /sum && uname -m > /arch
RUN dd if=/dev/urandom of=/blob bs=1M count=64 2>/dev/null && ls -l /blob
"""

BIG_CONTEXT = """\
FROM {base}
COPY . /ctx
"""

SMALL_FILES, SMALL_SIZE = 10_000, KIB
BIG_FILES, BIG_SIZE = 5, 20 * MIB


def make_empty_context(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)


def make_big_context(directory: Path) -> None:
    """10,000 files of 1 KiB in 100 directories and 5 files of 20 MiB, all random bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    for n in range(SMALL_FILES):
        sub = directory / f"d{n // 100:03d}"
        if n % 100 == 0:
            sub.mkdir()
        (sub / f"f{n % 100:03d}.bin").write_bytes(os.urandom(SMALL_SIZE))
    for n in range(BIG_FILES):
        with open(directory / f"big{n}.bin", "wb") as out:
            for _ in range(BIG_SIZE // MIB):
                out.write(os.urandom(MIB))


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    summary: str
    template: str  # the Dockerfile, {base} standing for the base image's reference
    make_context: Callable[[Path], None]
    cold_goal: float  # polybuild / BuildKit wall time, at most
    warm_goal: float

    def dockerfile(self, base: str) -> str:
        return self.template.format(base=base)


WORKLOADS = (
    Workload(
        "seed",
        "cross-compile stage (the seed's example)",
        SEED,
        make_empty_context,
        cold_goal=1.0,
        warm_goal=1.0,
    ),
    Workload(
        "emulated-cpu",
        "emulated CPU loop + 64 MiB dd layer",
        EMULATED_CPU,
        make_empty_context,
        cold_goal=0.75,
        warm_goal=0.5,
    ),
    Workload(
        "big-context",
        "COPY . /ctx of 10,000 x 1 KiB + 5 x 20 MiB",
        BIG_CONTEXT,
        make_big_context,
        cold_goal=0.5,
        warm_goal=0.5,
    ),
)
BY_NAME = {w.name: w for w in WORKLOADS}
