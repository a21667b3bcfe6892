"""BuildKit node benchmark: one three-platform build by polybuild here, by polybuild driving a
BuildKit daemon, and by `buildctl` on the same daemon; cold and warm, wall and client CPU time,
and the ratios polybuild-on-BuildKit / buildctl (the cost of our client; goal: within 5%).

Run as root from the repository root: .venv/bin/python -m benchmarks.buildkit_node [--trials 3]

A private buildkitd v0.32.2 (tests/buildkit/conftest.py's daemon: runc, overlayfs, its own
root) pulls from a loopback docker-registry (tests/registry/conftest.py) holding busybox for
linux/amd64, linux/arm64 and linux/arm/v7 (Debian's busybox-static, pushed by polybuild). The
workload is the seed's cross-compile example on that busybox (a $BUILDPLATFORM stage whose RUN
writes /log, COPY --from into each platform's image) plus `COPY . /ctx` of a context of 200
small files, built with `-o type=oci,dest=...` by:

  polybuild local      `polybuild build` on this machine (pulls busybox from the registry)
  polybuild BuildKit   `polybuild build --builder bk` (a `--driver remote` node on the daemon)
  buildctl             `buildctl build --frontend dockerfile.v0 --local context=...`

Cold: `buildctl prune --all` on the daemon and a fresh polybuild data root; warm: the same build
again, which must run no step. Each trial measures the tools in a rotated order; times are
medians of the trials. CPU is user+sys of the client process and everything it waited for
(for polybuild local that is the whole build; for the other two only the client, since the
daemon does the work). Exit status 1 when a build failed or a warm build ran a step.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import nodes, peers  # noqa: E402
from benchmarks import runner as bench  # noqa: E402
from benchmarks.peers import BUILDCTL, BuildkitDaemon  # noqa: E402

PLATFORMS = bench.PLATFORMS
TOOLS = ("polybuild local", "polybuild BuildKit", "buildctl")
BUILDER = "bk"
CONTEXT_FILES = 200
# A Dockerfile step that runs or copies; BuildKit never reports its own vertices (load the
# context, the metadata, FROM, the export) as cached, so those are not counted as having run.
STEP = re.compile(r"\] (RUN|COPY|ADD) ")

# The seed's example with its ARGs declared (BuildKit expands only declared ARGs in a stage);
# no `# syntax=` line: BuildKit would pull docker/dockerfile:1 from Docker Hub for it.
DOCKERFILE = """\
FROM --platform=$BUILDPLATFORM {base} AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM {base}
COPY --from=build /log /log
COPY . /ctx
"""


@dataclass(frozen=True, slots=True)
class Timing:
    """One build: wall seconds, the client's CPU seconds, vertices completed, and the RUN,
    COPY and ADD steps that ran (were not cached)."""

    wall: float
    cpu: float
    steps: int
    ran: tuple[str, ...]


@dataclass(slots=True)
class Result:
    tool: str
    cold: list[Timing] = field(default_factory=list)
    warm: list[Timing] = field(default_factory=list)

    def median(self, kind: str, what: str) -> float | None:
        timings: list[Timing] = getattr(self, kind)
        values = [getattr(t, what) for t in timings]
        return statistics.median(values) if values else None

    def spread(self, kind: str) -> str:
        walls = [t.wall for t in getattr(self, kind)]
        return f"{min(walls):.2f}-{max(walls):.2f}" if walls else "-"


def timed(argv: Sequence[str | Path], env: dict[str, str] | None, out: Path) -> Timing:
    """Run one build with `--progress=rawjson`; its wall time and the CPU of what it ran."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, proc = bench.run(argv, env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    if proc.returncode != 0:
        raise bench.MeasurementError(f"{Path(argv[0]).name} build: exit "
                                     f"{proc.returncode}: {bench.tail(proc)}")  # fmt: skip
    found = peers.oci_platforms(out)
    if found != sorted(PLATFORMS):
        raise bench.MeasurementError(f"{out} holds {found}, not {sorted(PLATFORMS)}")
    out.unlink()
    completed = [v for v in bench.parse_rawjson(proc.stderr) if v.completed]
    if not completed:
        raise bench.MeasurementError(f"{Path(argv[0]).name}: no completed step in its progress")
    ran = tuple(v.name for v in completed if not v.cached and STEP.search(v.name))
    return Timing(seconds, cpu, len(completed), ran)


class Bench:
    """The daemon, the registry's busybox, the context and the three ways to build it."""

    def __init__(self, work: Path, daemon: BuildkitDaemon, polybuild: bench.Polybuild, base: str):
        self.work = work
        self.daemon = daemon
        self.polybuild = polybuild
        self.buildctl = BUILDCTL
        self.context = work / "context"
        self.dockerfile_dir = work / "dockerfile"
        self.dockerfile_dir.mkdir()
        (self.dockerfile_dir / "Dockerfile").write_text(DOCKERFILE.format(base=base))
        self.roots = 0

    def make_context(self) -> None:
        for n in range(CONTEXT_FILES):
            sub = self.context / f"d{n % 10}"
            sub.mkdir(parents=True, exist_ok=True)
            (sub / f"f{n:03d}.txt").write_text(f"file {n}\n" * (1 + n % 50))

    def prune_daemon(self) -> None:
        bench.checked([self.buildctl, "--addr", self.daemon.address, "prune", "--all"])

    def fresh_root(self, builder: bool) -> Path:
        self.roots += 1
        root = self.work / f"root-{self.roots}"
        root.mkdir()
        if builder:
            bench.checked(
                [self.polybuild.executable, "create", "--name", BUILDER,
                 "--driver", "remote", self.daemon.address],
                self.polybuild.env(root),
            )  # fmt: skip
        return root

    def argv(self, tool: str, root: Path | None, out: Path) -> list[str | Path]:
        if tool == "buildctl":
            return [self.buildctl, "--addr", self.daemon.address, "build",
                    "--frontend", "dockerfile.v0", "--local", f"context={self.context}",
                    "--local", f"dockerfile={self.dockerfile_dir}",
                    "--opt", f"platform={','.join(PLATFORMS)}",
                    "--output", f"type=oci,dest={out}", "--progress=rawjson"]  # fmt: skip
        builder = ["--builder", BUILDER] if tool == "polybuild BuildKit" else []
        return [self.polybuild.executable, "build", *builder,
                "--platform", ",".join(PLATFORMS), "-f", self.dockerfile_dir / "Dockerfile",
                "-o", f"type=oci,dest={out}", "--progress=rawjson", self.context]  # fmt: skip

    def cold_and_warm(self, tool: str) -> tuple[Timing, Timing]:
        root = None
        if tool != "polybuild local":
            self.prune_daemon()
        if tool != "buildctl":
            root = self.fresh_root(builder=tool == "polybuild BuildKit")
        env = self.polybuild.env(root) if root is not None else None
        out = self.work / "out.tar"
        try:
            cold = timed(self.argv(tool, root, out), env, out)
            warm = timed(self.argv(tool, root, out), env, out)
        finally:
            if root is not None:
                leaked = bench.remove_tree(root)
                if leaked:
                    print(f"   WARNING: mounts left under {root} (unmounted): {leaked}")
        return cold, warm


def rotations(trials: int) -> Iterator[tuple[str, ...]]:
    for trial in range(trials):
        shift = trial % len(TOOLS)
        yield TOOLS[shift:] + TOOLS[:shift]


def measure(b: Bench, trials: int) -> list[Result]:
    results = {tool: Result(tool) for tool in TOOLS}
    for trial, order in enumerate(rotations(trials), 1):
        print(f"== trial {trial}/{trials}: {', '.join(order)}", flush=True)
        for tool in order:
            cold, warm = b.cold_and_warm(tool)
            print(f"   {tool:<20} cold {cold.wall:6.2f} s  warm {warm.wall:6.2f} s", flush=True)
            results[tool].cold.append(cold)
            results[tool].warm.append(warm)
    return list(results.values())


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(results: list[Result], trials: int) -> bool:
    """Print the table, the ratios and the warm-build check; True when every warm build ran
    no step."""
    print(f"\n== seed cross-compile + COPY of {CONTEXT_FILES} files "
          f"({','.join(PLATFORMS)}), -o type=oci: median of {trials}")  # fmt: skip
    print(f"{'tool':<22} {'cold s':>8} {'cold cpu':>9} {'warm s':>8} {'warm cpu':>9}"
          f"   {'cold range':>11} {'warm range':>11}")  # fmt: skip
    for r in results:
        print(
            f"{r.tool:<22} {fmt(r.median('cold', 'wall')):>8} {fmt(r.median('cold', 'cpu')):>9} "
            f"{fmt(r.median('warm', 'wall')):>8} {fmt(r.median('warm', 'cpu')):>9}"
            f"   {r.spread('cold'):>11} {r.spread('warm'):>11}"
        )
    by = {r.tool: r for r in results}
    pb, ctl = by["polybuild BuildKit"], by["buildctl"]
    cells = [
        fmt(ratio(pb.median(kind, what), ctl.median(kind, what)), ".3f")
        for kind in ("cold", "warm")
        for what in ("wall", "cpu")
    ]
    print(f"{'polybuild BK/buildctl':<22} {cells[0]:>8} {cells[1]:>9} {cells[2]:>8} {cells[3]:>9}")
    for kind in ("cold", "warm"):
        wall = ratio(pb.median(kind, "wall"), ctl.median(kind, "wall"))
        if wall is not None:
            verdict = "PASS" if wall <= 1.05 else "FAIL"
            print(f"  {kind}: polybuild on BuildKit / buildctl wall {wall:.3f} "
                  f"(goal: within 5%): {verdict}")  # fmt: skip
    ok = True
    for r in results:
        steps = sorted({t.steps for t in r.cold + r.warm})
        ran = sorted({name for t in r.warm for name in t.ran})
        print(f"  {r.tool}: vertices completed per build {steps}; warm builds ran "
              f"{ran or 'no RUN/COPY step'}")  # fmt: skip
        ok &= not ran
    return ok


def run(args: argparse.Namespace, work: Path) -> bool:
    executable = nodes.executable_path()
    tarballs = bench.make_tarballs(work)
    pycache = None if args.keep_python_env else work / "pycache"
    polybuild = bench.Polybuild(executable, tarballs, pycache)
    print("== warming up polybuild (untimed build in a throwaway root)", flush=True)
    polybuild.warm_up(work)
    with ExitStack() as stack:
        registry = peers.start_registry(stack, work)
        base = f"{registry.host}/library/busybox:latest"
        peers.push_busybox(polybuild, tarballs, base, work)
        daemon = peers.start_buildkitd(stack, work, registry.host)
        print(f"polybuild: {executable}\nbuildkitd: {peers.buildkitd_binary()} "
              f"({peers.daemon_version(daemon)})")  # fmt: skip
        print(f"registry: {base} (busybox {', '.join(PLATFORMS)})")
        b = Bench(work, daemon, polybuild, base)
        b.make_context()
        print("== warming up the daemon (an untimed buildctl build)", flush=True)
        timed(b.argv("buildctl", None, work / "out.tar"), None, work / "out.tar")
        results = measure(b, args.trials)
    return report(results, args.trials)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="cold+warm builds per tool (3)")
    parser.add_argument(
        "--keep-python-env",
        action="store_true",
        help="run polybuild with PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are",
    )
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: buildkitd and polybuild's builds need it")
        return 1
    missing = peers.buildkit_missing()
    if missing:
        print(missing)
        return 1
    return peers.run_in_scratch(
        "polybuild-bench-buildkit-", lambda work: 0 if run(args, work) else 1, "daemon and registry"
    )


if __name__ == "__main__":
    raise SystemExit(main())
