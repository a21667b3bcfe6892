"""Build benchmark: polybuild against BuildKit (and optionally buildah) on issue 15's reference
workloads, three platforms, cold and warm, side by side in one run; prints the issue's table.

Run as root from the repository root:
  .venv/bin/python -m benchmarks.build [--quick] [--trials N] [--workload NAME]
                                       [--peers buildkit,buildah] [--json FILE]

Workloads (benchmarks/workloads.py), each for linux/amd64,linux/arm64,linux/arm/v7 on busybox:

  seed          the seed's cross-compile example ($BUILDPLATFORM stage, COPY --from)
  emulated-cpu  a busybox awk loop (emulated for arm64 and arm/v7) plus a 64 MiB dd layer
  big-context   COPY . /ctx of 10,000 x 1 KiB + 5 x 20 MiB files

busybox (Debian's busybox-static, 3-platform index) is on a loopback docker-registry; every
tool pulls it from there in its cold build, told to use plain HTTP (buildkitd.toml and
polybuild.toml both say `http = true` for it). Cold: polybuild a fresh data root (so its base is
pulled again, as BuildKit's after `buildctl prune --all`), BuildKit `buildctl prune --all`,
buildah a fresh root. Warm: the identical build right after. Outputs: `-o type=oci,dest=` /
`--output type=oci,dest=` (buildah: its store, then `manifest push --all oci-archive:`, timed).
Each trial runs the tools in a rotated order; figures are medians of the trials (3; --quick 1).
CPU is user+sys: for polybuild and buildah the process tree (RUSAGE_CHILDREN), for BuildKit
buildctl's plus the daemon's and its descendants' (/proc/PID/stat before and after).

A warm build must take every Dockerfile step from the cache (rawjson `cached`; buildah's
"Using cache"); exit status 1 when a build failed, an output lacked a platform, or a warm build
ran a step. Goals are printed (PASS/FAIL), not asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pytest  # noqa: E402 (the daemon and registry helpers fail with pytest.fail)
from benchmarks import nodes, peers, runner, workloads  # noqa: E402
from benchmarks.build_tools import (  # noqa: E402
    BuildahTool,
    BuildkitTool,
    PolybuildTool,
    Run,
    Tool,
)
from benchmarks.workloads import Workload  # noqa: E402

PLATFORMS = runner.PLATFORMS
PEERS = ("buildkit", "buildah")
# --- trials and figures ---------------------------------------------------------------------


@dataclass(slots=True)
class Figures:
    """A workload's runs per tool."""

    workload: Workload
    cold: dict[str, list[Run]] = field(default_factory=dict)
    warm: dict[str, list[Run]] = field(default_factory=dict)

    def median(self, kind: str, tool: str, what: str) -> float | None:
        runs: list[Run] = getattr(self, kind).get(tool, [])
        return statistics.median(getattr(r, what) for r in runs) if runs else None


def measure(
    workload: Workload, tools: Sequence[Tool], work: Path, base: str, trials: int
) -> Figures:
    dockerfile_dir = work / f"dockerfile-{workload.name}"
    dockerfile_dir.mkdir()
    (dockerfile_dir / "Dockerfile").write_text(workload.dockerfile(base))
    context = work / f"context-{workload.name}"
    workload.make_context(context)
    figures = Figures(workload, {t.name: [] for t in tools}, {t.name: [] for t in tools})
    out = work / "out.tar"
    try:
        for trial in range(trials):
            shift = trial % len(tools)
            order = [*tools[shift:], *tools[:shift]]
            for tool in order:
                tool.make_cold()
                cold = tool.build(dockerfile_dir, context, out)
                warm = tool.build(dockerfile_dir, context, out)
                figures.cold[tool.name].append(cold)
                figures.warm[tool.name].append(warm)
                print(f"   trial {trial + 1}/{trials} {tool.name:<10} cold {cold.wall:7.2f} s "
                      f"(cpu {cold.cpu:6.2f})  warm {warm.wall:6.2f} s (cpu {warm.cpu:5.2f})",
                      flush=True)  # fmt: skip
    finally:
        for tool in tools:
            tool.close()
        shutil.rmtree(context, ignore_errors=True)
    return figures


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


@dataclass(frozen=True, slots=True)
class Row:
    """A row of the issue's table: a workload's cold or warm build, polybuild against a peer."""

    workload: str
    kind: str
    summary: str
    peer: str
    polybuild_s: float | None
    peer_s: float | None
    ratio: float | None
    goal: float
    polybuild_cpu: float | None
    peer_cpu: float | None

    @property
    def passed(self) -> bool:
        return self.ratio is not None and self.ratio <= self.goal


def rows(all_figures: list[Figures], peer: str) -> list[Row]:
    table = []
    for f in all_figures:
        for kind in ("cold", "warm"):
            pb, other = f.median(kind, "polybuild", "wall"), f.median(kind, peer, "wall")
            goal = f.workload.cold_goal if kind == "cold" else f.workload.warm_goal
            table.append(
                Row(f.workload.name, kind, f.workload.summary, peer, pb, other, ratio(pb, other),
                    goal, f.median(kind, "polybuild", "cpu"), f.median(kind, peer, "cpu"))
            )  # fmt: skip
    return table


def print_table(table: list[Row], peer: str, trials: int) -> None:
    print(f"\n== polybuild / {peer}: {','.join(PLATFORMS)}, -o type=oci, median of {trials}")
    print(f"| workload | polybuild s | {peer} s | ratio | goal | polybuild cpu s | {peer} cpu s |")
    print("|---|---|---|---|---|---|---|")
    for row in table:
        name = f"{row.summary}: cold" if row.kind == "cold" else "same, warm"
        verdict = "PASS" if row.passed else "FAIL"
        # the goals are issue 15's, against BuildKit
        goal = f"<= {row.goal:.2f}x {verdict}" if peer == "BuildKit" else "-"
        cells = [name, fmt(row.polybuild_s), fmt(row.peer_s), f"{fmt(row.ratio)}x", goal,
                 fmt(row.polybuild_cpu), fmt(row.peer_cpu)]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


def check_warm(all_figures: list[Figures]) -> bool:
    """Print what each warm build took from the cache; False when one ran a step."""
    ok = True
    print("\n== warm builds: every Dockerfile step from the cache")
    for f in all_figures:
        for tool, runs in f.warm.items():
            ran = sorted({n for r in runs for n in r.ran})
            steps = sorted({r.steps for r in runs})
            others = sorted({len(r.other_uncached) for r in runs})
            ran += ["(no Dockerfile step in the progress)"] if 0 in steps else []
            text = "all cached" if not ran else f"RAN {ran}"
            print(f"  {f.workload.name:<13} {tool:<10} Dockerfile steps {steps}: {text}; "
                  f"other vertices not marked cached {others}")  # fmt: skip
            ok &= not ran
    return ok


def machine() -> dict[str, object]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "host": platform.node(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }


def run(args: argparse.Namespace, work: Path) -> bool:
    executable = runner.executable()
    tarballs = runner.make_tarballs(work)
    pycache = None if args.keep_python_env else work / "pycache"
    client = runner.Polybuild(executable, tarballs, pycache)
    print("== warming up polybuild (bytecode; an untimed build in a throwaway root)", flush=True)
    client.warm_up(work)
    with ExitStack() as stack:
        registry = peers.start_registry(stack, work)
        base = f"{registry.host}/library/busybox:latest"
        client.plain_http(work, registry.host)  # as start_buildkitd configures BuildKit
        peers.push_busybox(client, tarballs, base, work)
        tools: list[Tool] = [PolybuildTool(client, work)]
        versions = {"polybuild": str(executable)}
        if "buildkit" in args.peers:
            daemon = peers.start_buildkitd(stack, work, registry.host)
            versions["BuildKit"] = peers.daemon_version(daemon)
            tools.append(BuildkitTool(daemon))
        if "buildah" in args.peers:
            path, note = peers.find_buildah(args.install_peers)
            if path is None:
                raise runner.MeasurementError(note)
            versions["buildah"] = note
            tools.append(BuildahTool(path, work))
        for name, version in versions.items():
            print(f"{name}: {version}")
        print(f"base: {base} ({', '.join(PLATFORMS)}), pulled by every tool in its cold builds")
        if "buildkit" in args.peers:
            print("== warming up the daemon (an untimed buildctl build)", flush=True)
            tools[1].build(*warm_up_inputs(work, base), work / "out.tar")
        before = machine()
        all_figures = []
        for name in args.workload:
            workload = workloads.BY_NAME[name]
            print(f"\n== {workload.name}: {workload.summary}", flush=True)
            all_figures.append(measure(workload, tools, work, base, args.trials))
    ok = check_warm(all_figures)
    peer_names = [t.name for t in tools[1:]]
    tables = {p: rows(all_figures, p) for p in peer_names}
    for peer, table in tables.items():
        print_table(table, peer, args.trials)
    after = machine()
    loads = f"{before['load_average']} / {after['load_average']}"
    print(f"\nmachine: {after['host']}, {after['cpus']} CPUs, kernel {after['kernel']}; "
          f"load average before/after: {loads}")  # fmt: skip
    if args.json:
        document = {
            "machine": {"before": before, "after": after},
            "versions": versions,
            "platforms": PLATFORMS,
            "trials": args.trials,
            "tables": {p: [{**asdict(r), "pass": r.passed} for r in t] for p, t in tables.items()},
            "runs": {
                f.workload.name: {
                    kind: {t: [asdict(r) for r in rs] for t, rs in getattr(f, kind).items()}
                    for kind in ("cold", "warm")
                }
                for f in all_figures
            },
            "warm_all_cached": ok,
        }
        Path(args.json).write_text(json.dumps(document, indent=2) + "\n")
        print(f"figures written to {args.json}")
    return ok


def warm_up_inputs(work: Path, base: str) -> tuple[Path, Path]:
    """A Dockerfile directory (the seed on the registry's busybox) and a context of one file
    for the daemon's untimed first build."""
    directory = work / "dockerfile-warm-up"
    directory.mkdir()
    (directory / "Dockerfile").write_text(workloads.BY_NAME["seed"].dockerfile(base))
    context = work / "context-warm-up"
    context.mkdir()
    (context / "file.txt").write_text("warm-up\n")
    return directory, context


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    names = [w.name for w in workloads.WORKLOADS]
    parser.add_argument("--quick", action="store_true", help="one trial instead of three")
    parser.add_argument("--trials", type=int, help="cold+warm builds per tool (3; --quick 1)")
    parser.add_argument(
        "--workload", action="append", choices=names, help="this workload only (repeatable)"
    )
    parser.add_argument(
        "--peers", default="buildkit", help="comma-separated: buildkit, buildah (buildkit)"
    )
    parser.add_argument(
        "--install-peers", action="store_true", help="install buildah with apt when missing"
    )
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    parser.add_argument(
        "--keep-python-env",
        action="store_true",
        help="run polybuild with PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are",
    )
    args = parser.parse_args(argv)
    args.workload = args.workload or names
    args.peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    for peer in args.peers:
        if peer not in PEERS:
            parser.error(f"unknown peer {peer!r} (known: {', '.join(PEERS)})")
    if args.trials is None:
        args.trials = 1 if args.quick else 3
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: buildkitd and polybuild's builds need it")
        return 1
    missing = peers.buildkit_missing() if "buildkit" in args.peers else ""
    if missing:
        print(missing)
        return 1
    overlays_before = runner.overlay_mount_count()
    work = Path(tempfile.mkdtemp(prefix="polybuild-bench-build-"))
    try:
        with nodes.interruptible():
            return 0 if run(args, work) else 1
    except runner.MeasurementError as exc:
        print(f"FAILED: {exc}")
        return 1
    except pytest.fail.Exception as exc:
        print(f"FAILED: {exc.msg}")
        return 1
    except KeyboardInterrupt:
        print("interrupted: daemon and registry stopped")
        return 130
    finally:
        leaked = runner.remove_tree(work)
        if leaked:
            print(f"WARNING: mounts left under {work} (unmounted): {', '.join(leaked)}")
        overlays_after = runner.overlay_mount_count()
        if overlays_after > overlays_before:
            print(f"WARNING: {overlays_after - overlays_before} overlay mounts more than before")


if __name__ == "__main__":
    raise SystemExit(main())
