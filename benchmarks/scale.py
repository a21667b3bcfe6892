"""Scale benchmark (issue 15's other figures): peak memory of a 1 GiB-context build, layer
export throughput, and how build time grows with platforms and with context files.

Run as root from the repository root:
  .venv/bin/python -m benchmarks.scale [--quick] [--only rss,layer,platforms,files] [--json F]

  rss        peak RSS of `polybuild build` (3 platforms, `COPY . /ctx` of a 1 GiB context,
             `-o type=oci`): the process tree's summed RSS polled every 20 ms, and the
             largest single process (wait4's ru_maxrss). Goal: under 200 MB.
  layer      a 1 GiB directory written as one gzip layer by polybuild's own layer writer
             (polybuild.layers.upper_layer: tar + compression) in a process pinned to one core
             (taskset -c 0); throughput is input bytes per wall second. Goal: >= 300 MB/s. The
             rss build's COPY and export vertex times (rawjson) are printed beside it.
  platforms  the seed's cross-compile example plus a RUN per platform, for 1 to 6 platforms
             (amd64, arm64, arm/v7, 386, ppc64le, s390x; all but amd64 and 386 emulated)
  files      `COPY . /ctx` of 1,000 to 100,000 files of 1 KiB, three platforms

Every build pulls busybox (Debian's busybox-static, six platforms) from a loopback
docker-registry; cold builds use a fresh data root, warm ones repeat the build. A curve's
`slope` is log(t2/t1)/log(n2/n1) between neighbouring points: 1 is linear, under 1 better.
--quick: a 128 MiB context and layer, 1/3/6 platforms, 1,000/3,000/10,000 files.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import peers, runner  # noqa: E402
from benchmarks.build_tools import PolybuildTool  # noqa: E402

MIB = runner.MIB
GIB = 1 << 30
RSS_GOAL = 200 * 1000 * 1000
LAYER_GOAL = 300 * 1000 * 1000
ALL_ARCHES = (*runner.BASE_ARCHES, *runner.MORE_ARCHES)
SIX = tuple(a[3] for a in ALL_ARCHES)
PARTS = ("rss", "layer", "platforms", "files")
CURVE_TIMEOUT = 300.0  # a platform-curve build that takes longer hangs (see README)

COPY_ALL = "FROM {base}\nCOPY . /ctx\n"
SEED_RUN = """\
FROM --platform=$BUILDPLATFORM {base} AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM {base}
COPY --from=build /log /log
RUN uname -m > /arch
"""

# The layer writer, run alone in a process pinned to one core: prints its figures as JSON.
LAYER_CHILD = """\
import json, resource, sys, time
from pathlib import Path
from polybuild.layers import upper_layer
source, out = Path(sys.argv[1]), sys.argv[2]
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
start, start_cpu = time.perf_counter(), cpu()
with open(out, "wb") as f:
    upper_layer(source, f)
wall = time.perf_counter() - start
print(json.dumps({"wall": wall, "cpu": cpu() - start_cpu,
                  "compressed": Path(out).stat().st_size}))
"""


def make_big_context(directory: Path, total: int) -> int:
    """About `total` bytes: 1,000 files of 64 KiB, the rest in files of up to 128 MiB; every
    file half random bytes, half zeros (gzip halves it). Returns the bytes written."""
    directory.mkdir(parents=True)
    small = directory / "small"
    small.mkdir()
    written = 0
    for n in range(1000):
        (small / f"f{n:04d}").write_bytes(os.urandom(32 << 10) + bytes(32 << 10))
        written += 64 << 10
    big = (total - written) // MIB  # whole MiB left, in files of up to 128 MiB
    for n, first in enumerate(range(0, big, 128)):
        with open(directory / f"big{n}.bin", "wb") as out:
            for _ in range(min(128, big - first)):
                out.write(os.urandom(MIB // 2) + bytes(MIB // 2))
    written += big * MIB
    return written


def make_files(directory: Path, count: int) -> None:
    """`count` files of 1 KiB of random bytes, 100 per directory."""
    directory.mkdir(parents=True)
    for n in range(count):
        sub = directory / f"d{n // 100:04d}"
        if n % 100 == 0:
            sub.mkdir()
        (sub / f"f{n % 100:02d}").write_bytes(os.urandom(1024))


@dataclass(frozen=True, slots=True)
class Peak:
    wall: float
    tree_peak: int  # bytes, summed over the tree at the worst sample
    tree_anon_peak: int  # the same, anonymous memory only (no mapped page cache)
    largest_process: int  # bytes, wait4's ru_maxrss
    copy_s: float | None  # the COPY vertices' span in rawjson
    export_s: float | None  # the export vertex's


def vertex_span(stderr: str, prefix: str, contains: str) -> float | None:
    """Seconds from the first start to the last completion of matching rawjson vertices."""
    starts, ends = [], []
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        for v in json.loads(line).get("vertexes") or []:
            name = str(v.get("name", ""))
            if contains in name and (not prefix or name.startswith(prefix)):
                if v.get("started"):
                    starts.append(datetime.fromisoformat(v["started"].replace("Z", "+00:00")))
                if v.get("completed"):
                    ends.append(datetime.fromisoformat(v["completed"].replace("Z", "+00:00")))
    return (max(ends) - min(starts)).total_seconds() if starts and ends else None


def peak_rss(client: runner.Polybuild, root: Path, argv: Sequence[str | Path]) -> Peak:
    log = root / "progress.jsonl"
    with log.open("w") as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(a) for a in argv], env=client.env(root),
                                stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        worst = worst_anon = 0
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            rss, anon = runner.process_tree_rss(proc.pid)
            worst, worst_anon = max(worst, rss), max(worst_anon, anon)
            time.sleep(0.02)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr = log.read_text()
    if proc.returncode != 0:
        raise runner.MeasurementError(f"polybuild: exit {proc.returncode}: {stderr[-500:]}")
    return Peak(
        wall, worst, worst_anon, usage.ru_maxrss * 1024,
        vertex_span(stderr, "", "COPY . /ctx"), vertex_span(stderr, "exporting to", ""),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Point:
    n: int
    cold: float
    warm: float
    cold_cpu: float
    warm_cpu: float


def curve(
    tool: PolybuildTool, dockerfile_dir: Path, context: Path, n: int, work: Path
) -> Point | str:
    """A point of a curve, or why it failed (the curve goes on without it)."""
    tool.make_cold()
    try:
        cold = tool.build(dockerfile_dir, context, work / "out.tar")
        warm = tool.build(dockerfile_dir, context, work / "out.tar")
    except runner.MeasurementError as exc:
        print(f"   {n:,}: FAILED: {exc}", flush=True)
        return str(exc)
    finally:
        tool.close()
    if warm.ran:
        return f"a warm build ran {warm.ran}"
    print(f"   {n:,}: cold {cold.wall:.2f} s, warm {warm.wall:.2f} s", flush=True)
    return Point(n, cold.wall, warm.wall, cold.cpu, warm.cpu)


def print_curve(title: str, unit: str, points: Sequence[Point | str]) -> None:
    print(f"\n== {title}")
    print(f"{unit:>10} {'cold s':>8} {'slope':>6} {'warm s':>8} {'slope':>6} "
          f"{'cold cpu':>9} {'warm cpu':>9}")  # fmt: skip
    previous = None
    for p in points:
        if isinstance(p, str):
            print(f"{'':>10} FAILED: {p}")
            continue
        slopes = ["", ""]
        if previous is not None:
            slopes = [
                f"{math.log(a / b) / math.log(p.n / previous.n):.2f}"
                for a, b in ((p.cold, previous.cold), (p.warm, previous.warm))
            ]
        print(f"{p.n:>10,} {p.cold:>8.2f} {slopes[0]:>6} {p.warm:>8.2f} {slopes[1]:>6} "
              f"{p.cold_cpu:>9.2f} {p.warm_cpu:>9.2f}")  # fmt: skip
        previous = p


def write_dockerfile(work: Path, name: str, text: str) -> Path:
    directory = work / f"dockerfile-{name}"
    directory.mkdir()
    (directory / "Dockerfile").write_text(text)
    return directory


def measure_rss(client: runner.Polybuild, work: Path, base: str, context: Path, total: int) -> Peak:
    print(f"== rss: 3 platforms, COPY of {total / MIB:.0f} MiB", flush=True)
    root = work / "rss-root"
    root.mkdir()
    directory = write_dockerfile(work, "rss", COPY_ALL.format(base=base))
    argv: list[str | Path] = [
        client.executable, "build", "--platform", ",".join(runner.PLATFORMS),
        "-f", directory / "Dockerfile", "-o", f"type=oci,dest={work / 'out.tar'}",
        "--progress=rawjson", context,
    ]  # fmt: skip
    try:
        peak = peak_rss(client, root, argv)
    finally:
        runner.remove_tree(root)
    (work / "out.tar").unlink()
    worst = max(peak.tree_peak, peak.largest_process)
    print(f"\n== peak RSS, 3-platform build of a {total / MIB:.0f} MiB context: process tree "
          f"{peak.tree_peak / 1e6:.0f} MB (polled), largest process "
          f"{peak.largest_process / 1e6:.0f} MB (ru_maxrss); goal < 200 MB: "
          f"{'PASS' if worst < RSS_GOAL else 'FAIL'}")  # fmt: skip
    print(f"   of which anonymous (not mapped page cache): {peak.tree_anon_peak / 1e6:.0f} MB "
          f"(< 200 MB: {'PASS' if peak.tree_anon_peak < RSS_GOAL else 'FAIL'})")  # fmt: skip
    print(f"   wall {peak.wall:.2f} s; COPY vertices {peak.copy_s or 0:.2f} s, "
          f"export vertex {peak.export_s or 0:.2f} s")  # fmt: skip
    return peak


def measure_layer(
    client: runner.Polybuild, work: Path, context: Path, total: int
) -> dict[str, float]:
    out = work / "layer.tar.gz"
    argv: list[str | Path] = ["taskset", "-c", "0", sys.executable, "-c", LAYER_CHILD, context, out]
    _, proc = runner.run(argv, client.env(work))
    if proc.returncode != 0:
        raise runner.MeasurementError(f"layer writer: {runner.tail(proc)}")
    layer: dict[str, float] = json.loads(proc.stdout)
    out.unlink()
    rate = total / layer["wall"]
    print(f"\n== layer export, one core: {total / MIB:.0f} MiB -> "
          f"{layer['compressed'] / MIB:.0f} MiB gzip in {layer['wall']:.2f} s "
          f"(cpu {layer['cpu']:.2f} s): {rate / 1e6:.0f} MB/s; goal >= 300 MB/s: "
          f"{'PASS' if rate >= LAYER_GOAL else 'FAIL'}")  # fmt: skip
    return {**layer, "input_bytes": total, "bytes_per_s": rate}


def measure_platforms(
    client: runner.Polybuild, work: Path, base: str, quick: bool
) -> list[Point | str]:
    directory = write_dockerfile(work, "platforms", SEED_RUN.format(base=base))
    context = work / "context-empty"
    context.mkdir()
    points: list[Point | str] = []
    for n in (1, 3, 6) if quick else range(1, 7):
        tool = PolybuildTool(client, work, SIX[:n], timeout=CURVE_TIMEOUT)
        points.append(curve(tool, directory, context, n, work))
    print_curve("platforms (seed + a RUN per platform)", "platforms", points)
    return points


def measure_files(
    client: runner.Polybuild, work: Path, base: str, quick: bool
) -> list[Point | str]:
    directory = write_dockerfile(work, "files", COPY_ALL.format(base=base))
    points: list[Point | str] = []
    for n in (1000, 3000, 10_000) if quick else (1000, 10_000, 100_000):
        context = work / f"context-files-{n}"
        make_files(context, n)
        tool = PolybuildTool(client, work)
        try:
            points.append(curve(tool, directory, context, n, work))
        finally:
            runner.remove_tree(context)
    print_curve("context files (COPY . /ctx of 1 KiB files, 3 platforms)", "files", points)
    return points


def run(args: argparse.Namespace, work: Path) -> dict[str, object]:
    tarballs = runner.make_tarballs(work, ALL_ARCHES)
    client = runner.Polybuild(runner.executable(), tarballs, work / "pycache")
    print("== warming up polybuild (bytecode; an untimed build in a throwaway root)", flush=True)
    client.warm_up(work)
    figures: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg(),
    }
    with ExitStack() as stack:
        registry = peers.start_registry(stack, work)
        base = f"{registry.host}/library/busybox:latest"
        client.plain_http(work, registry.host)
        peers.push_busybox(client, tarballs, base, work, ALL_ARCHES)
        print(f"base: {base} ({', '.join(SIX)})", flush=True)
        if "rss" in args.only or "layer" in args.only:
            context = work / "context-big"
            total = make_big_context(context, 128 * MIB if args.quick else GIB)
            try:
                if "rss" in args.only:
                    peak = measure_rss(client, work, base, context, total)
                    figures["rss"] = {**asdict(peak), "context_bytes": total}
                if "layer" in args.only:
                    figures["layer"] = measure_layer(client, work, context, total)
            finally:
                runner.remove_tree(context)
        if "platforms" in args.only:
            points = measure_platforms(client, work, base, args.quick)
            figures["platforms"] = [p if isinstance(p, str) else asdict(p) for p in points]
        if "files" in args.only:
            points = measure_files(client, work, base, args.quick)
            figures["files"] = [p if isinstance(p, str) else asdict(p) for p in points]
    curves = [figures.get(key, []) for key in ("platforms", "files")]
    figures["failed_points"] = [
        p for c in curves if isinstance(c, list) for p in c if isinstance(p, str)
    ]
    figures["load_after"] = os.getloadavg()
    print(f"\nload average before/after: {figures['load_before']} / {figures['load_after']}")
    return figures


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes and fewer points")
    parser.add_argument("--only", default=",".join(PARTS), help=f"some of {','.join(PARTS)}")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    args = parser.parse_args(argv)
    args.only = [p.strip() for p in args.only.split(",") if p.strip()]
    for part in args.only:
        if part not in PARTS:
            parser.error(f"unknown part {part!r} (known: {', '.join(PARTS)})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: polybuild's builds need it")
        return 1

    def measure(work: Path) -> int:
        figures = run(args, work)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
            print(f"figures written to {args.json}")
        return 1 if figures["failed_points"] else 0

    return peers.run_in_scratch("polybuild-bench-scale-", measure, "registry")


if __name__ == "__main__":
    raise SystemExit(main())
