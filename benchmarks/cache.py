"""Cache benchmark (issue 13): a cold three-platform build that exports its cache to a registry,
then the same build on an empty data root importing that cache; polybuild and BuildKit.

Run as root from the repository root: .venv/bin/python -m benchmarks.cache [--trials 3] [--quick]

The workload is build.py's `emulated-cpu` (W3): FROM busybox, a busybox awk loop (emulated for
linux/arm64 and linux/arm/v7) and a RUN writing 64 MiB of random bytes, for linux/amd64,
linux/arm64 and linux/arm/v7, pushed (`--push`, as a CI job does) to a loopback docker-registry
(tests/registry/conftest.py) that also holds busybox and the caches. Every client reaches the
registry through a counting TCP relay in this process, so the bytes are what crossed the wire
(HTTP headers included), not a figure a build tool prints about itself. Per trial and flow:

  polybuild  cold: a fresh data root, `polybuild build --push -t R/bench/pb:N-cold
             --cache-to type=registry,ref=R/cache/pb:N,mode=max`; cached: another fresh data
             root, `--push -t R/bench/pb:N-cached --cache-from R/cache/pb:N` (a bare ref, as
             buildx users type it)
  BuildKit   a private buildkitd v0.32.2 (../shared/tools/buildkit, tests/buildkit/conftest.py's
             daemon); cold: `buildctl prune --all`, then `buildctl build --frontend dockerfile.v0
             --output type=image,name=R/bench/bk:N-cold,push=true --export-cache
             type=registry,ref=R/cache/bk:N,mode=max`; cached: prune again, then
             `--import-cache type=registry,ref=R/cache/bk:N` and `name=R/bench/bk:N-cached`

Each trial uses a new cache ref and new random data, so nothing carries over but busybox. The
cached build must run no RUN step (`--progress=rawjson`) and push, for every platform, the very
layers the cold build pushed (the 64 MiB of random bytes would differ had the step run again).
CPU is user+sys of the client and everything it waited for, plus for BuildKit the daemon's
own (and its children's) from /proc. Times are medians of the trials. Goal: polybuild's cached
build under 15% of its cold one. Exit status 1 when a build failed, a cached build ran a step
or pushed other layers, or (not with --quick, whose workload is too small for it) polybuild
missed the goal. BuildKit's figures are for comparison: without ../shared/tools/buildkit they
are skipped, with a note.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import socket
import statistics
import sys
import threading
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import nodes, peers, workloads  # noqa: E402
from benchmarks import runner as bench  # noqa: E402
from benchmarks.peers import BUILDKIT, RUNC, BuildkitDaemon  # noqa: E402

PLATFORMS = bench.PLATFORMS
GOAL = 0.15
MIB = 1 << 20
FLOWS = ("polybuild", "BuildKit")
STEP = re.compile(r"\] RUN ")
MANIFEST_TYPES = ", ".join(
    "application/vnd." + kind
    for kind in (
        "oci.image.index.v1+json",
        "oci.image.manifest.v1+json",
        "docker.distribution.manifest.list.v2+json",
        "docker.distribution.manifest.v2+json",
    )
)


def dockerfile(base: str, quick: bool) -> str:
    """build.py's W3 Dockerfile on `base`; no `# syntax=` line (BuildKit would pull
    docker/dockerfile:1 from Docker Hub for it). --quick: a tenth of the loop, 4 MiB."""
    text = workloads.BY_NAME["emulated-cpu"].dockerfile(base)
    if quick:
        text = text.replace("i < 1000000", "i < 100000").replace("count=64", "count=4")
    return text


# --- the counting relay ---------------------------------------------------------------------


class CountingRelay:
    """A TCP relay on a loopback port in front of the registry, counting the bytes each way."""

    def __init__(self, upstream: str) -> None:
        host, _, port = upstream.rpartition(":")
        self.upstream = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.lock = threading.Lock()
        self.fetched = 0  # registry -> clients
        self.sent = 0  # clients -> registry
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.listener.close()

    def take(self) -> tuple[int, int]:
        """(fetched, sent) since the last call."""
        with self.lock:
            counts = self.fetched, self.sent
            self.fetched = self.sent = 0
        return counts

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=600)
        except OSError:
            client.close()
            return
        back = threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True)
        back.start()
        self._pump(client, upstream, False)
        back.join()
        client.close()
        upstream.close()

    def _pump(self, source: socket.socket, dest: socket.socket, fetching: bool) -> None:
        try:
            while data := source.recv(1 << 16):
                with self.lock:  # counted before the client can have it
                    if fetching:
                        self.fetched += len(data)
                    else:
                        self.sent += len(data)
                dest.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dest.shutdown(socket.SHUT_WR)


# --- measurements ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """One build: wall and CPU seconds, bytes fetched from and sent to the registry, the RUN
    steps that ran (were not cached), and the pushed image's layers per platform."""

    wall: float
    cpu: float
    fetched: int
    sent: int
    ran: tuple[str, ...]
    layers: dict[str, tuple[str, ...]]


@dataclass(slots=True)
class Result:
    flow: str
    cold: list[Timing] = field(default_factory=list)
    cached: list[Timing] = field(default_factory=list)
    skipped: str = ""

    def median(self, kind: str, what: str) -> float | None:
        values = [getattr(t, what) for t in getattr(self, kind)]
        return statistics.median(values) if values else None

    def spread(self, kind: str) -> str:
        walls = [t.wall for t in getattr(self, kind)]
        return f"{min(walls):.2f}-{max(walls):.2f}" if walls else "-"

    def ratio(self) -> float | None:
        cold, cached = self.median("cold", "wall"), self.median("cached", "wall")
        return cached / cold if cold and cached is not None else None


def image_layers(registry: str, reference: str) -> dict[str, tuple[str, ...]]:
    """{platform: layer digests} of a pushed index, read from the registry itself (uncounted)."""
    repository, _, tag = reference.partition("/")[2].rpartition(":")
    url = f"http://{registry}/v2/{repository}/manifests/"
    try:
        with httpx.Client(headers={"Accept": MANIFEST_TYPES}, timeout=60) as http:
            top = http.get(url + tag).raise_for_status().json()
            found = {}
            for entry in top.get("manifests", []):
                p = entry.get("platform", {})
                if p.get("os") in (None, "unknown"):  # attestations
                    continue
                name = "/".join(x for x in (p["os"], p["architecture"], p.get("variant")) if x)
                manifest = http.get(url + entry["digest"]).raise_for_status().json()
                found[name] = tuple(layer["digest"] for layer in manifest["layers"])
    except (httpx.HTTPError, KeyError, ValueError) as exc:
        raise bench.MeasurementError(f"reading {reference} from the registry: {exc}") from exc
    if sorted(found) != sorted(PLATFORMS):
        raise bench.MeasurementError(f"{reference} holds {sorted(found)}, not {sorted(PLATFORMS)}")
    return found


class Bench:
    """The registry (behind the relay), busybox, the Dockerfile and the two flows."""

    def __init__(
        self,
        work: Path,
        relay: CountingRelay,
        registry: str,
        polybuild: bench.Polybuild,
        daemon: BuildkitDaemon | None,
    ) -> None:
        self.work = work
        self.relay = relay
        self.registry = registry
        self.polybuild = polybuild
        self.daemon = daemon
        self.context = work / "context"
        self.context.mkdir()
        self.dockerfile_dir = work / "dockerfile"
        self.dockerfile_dir.mkdir()
        self.roots = 0

    def write_dockerfile(self, text: str) -> None:
        (self.dockerfile_dir / "Dockerfile").write_text(text)

    def buildctl(self, *args: str | Path) -> list[str | Path]:
        assert self.daemon is not None
        return [BUILDKIT / "buildctl", "--addr", self.daemon.address, *args]

    def argv(self, flow: str, image: str, cache: str, cold: bool) -> list[str | Path]:
        if flow == "BuildKit":
            cache_flag = (
                ["--export-cache", f"type=registry,ref={cache},mode=max"]
                if cold
                else ["--import-cache", f"type=registry,ref={cache}"]
            )
            return self.buildctl("build", "--frontend", "dockerfile.v0",
                                 "--local", f"context={self.context}",
                                 "--local", f"dockerfile={self.dockerfile_dir}",
                                 "--opt", f"platform={','.join(PLATFORMS)}",
                                 "--output", f"type=image,name={image},push=true",
                                 *cache_flag, "--progress=rawjson")  # fmt: skip
        cache_flag = (
            ["--cache-to", f"type=registry,ref={cache},mode=max"]
            if cold
            else ["--cache-from", cache]
        )
        return [self.polybuild.executable, "build", "--platform", ",".join(PLATFORMS),
                "-f", self.dockerfile_dir / "Dockerfile", "--push", "-t", image,
                *cache_flag, "--progress=rawjson", self.context]  # fmt: skip

    def timed(self, flow: str, image: str, cache: str, cold: bool) -> Timing:
        root = None
        env = None
        if flow == "BuildKit":
            bench.checked(self.buildctl("prune", "--all"))
        else:
            self.roots += 1
            root = self.work / f"root-{self.roots}"
            root.mkdir()
            env = self.polybuild.env(root)
        self.relay.take()
        daemon = self.daemon if flow == "BuildKit" else None
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        daemon_before = peers.daemon_cpu(daemon)
        try:
            seconds, proc = bench.run(self.argv(flow, image, cache, cold), env)
        finally:
            if root is not None:
                leaked = bench.remove_tree(root)
                if leaked:
                    print(f"   WARNING: mounts left under {root} (unmounted): {leaked}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        cpu += peers.daemon_cpu(daemon) - daemon_before
        fetched, sent = self.relay.take()
        what = f"{flow} {'cold' if cold else 'cached'} build"
        if proc.returncode != 0:
            raise bench.MeasurementError(f"{what}: exit {proc.returncode}: {bench.tail(proc)}")
        completed = [v for v in bench.parse_rawjson(proc.stderr) if v.completed]
        if not completed:
            raise bench.MeasurementError(f"{what}: no completed step in its progress")
        ran = tuple(v.name for v in completed if not v.cached and STEP.search(v.name))
        layers = image_layers(self.registry, image)
        return Timing(seconds, cpu, fetched, sent, ran, layers)


def measure(b: Bench, trials: int) -> list[Result]:
    flows = FLOWS if b.daemon is not None else FLOWS[:1]
    results = {flow: Result(flow) for flow in FLOWS}
    if b.daemon is None:
        results["BuildKit"].skipped = f"no {BUILDKIT / 'buildkitd'}"
    for trial in range(1, trials + 1):
        shift = (trial - 1) % len(flows)
        order = flows[shift:] + flows[:shift]
        print(f"== trial {trial}/{trials}: {', '.join(order)}", flush=True)
        for flow in order:
            short = "pb" if flow == "polybuild" else "bk"
            image = f"{b.relay.host}/bench/{short}:{trial}"
            cache = f"{b.relay.host}/cache/{short}:{trial}"
            cold = b.timed(flow, f"{image}-cold", cache, cold=True)
            cached = b.timed(flow, f"{image}-cached", cache, cold=False)
            print(f"   {flow:<10} cold {cold.wall:6.2f} s  cached {cached.wall:6.2f} s  "
                  f"fetched {cached.fetched / MIB:7.2f} MiB", flush=True)  # fmt: skip
            results[flow].cold.append(cold)
            results[flow].cached.append(cached)
    return list(results.values())


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[Result], trials: int, quick: bool) -> bool:
    """Print the table and the checks; True when every cached build ran no RUN step and pushed
    the cold build's layers, and (unless quick) polybuild met the goal."""
    size = "quick: 100,000 iterations, 4 MiB" if quick else "1,000,000 iterations, 64 MiB"
    print(f"\n== W3 ({size}; {','.join(PLATFORMS)}), --push, registry cache mode=max: "
          f"median of {trials}")  # fmt: skip
    print(f"{'flow':<10} {'cold s':>7} {'cold cpu':>8} {'cached s':>8} {'cached cpu':>10} "
          f"{'cached/cold':>11} {'fetched MiB':>11} {'pushed MiB':>10}"
          f"  {'cold range':>11} {'cached range':>12}")  # fmt: skip
    for r in results:
        if r.skipped:
            print(f"{r.flow:<10} skipped: {r.skipped}")
            continue
        fetched, sent = r.median("cached", "fetched"), r.median("cached", "sent")
        print(
            f"{r.flow:<10} {fmt(r.median('cold', 'wall')):>7} {fmt(r.median('cold', 'cpu')):>8} "
            f"{fmt(r.median('cached', 'wall')):>8} {fmt(r.median('cached', 'cpu')):>10} "
            f"{fmt(r.ratio(), '.3f'):>11} {fmt(fetched and fetched / MIB):>11} "
            f"{fmt(sent and sent / MIB):>10}  {r.spread('cold'):>11} {r.spread('cached'):>12}"
        )
    ok = True
    for r in results:
        if r.skipped:
            continue
        cold_fetched = r.median("cold", "fetched") or 0
        cold_sent = r.median("cold", "sent") or 0
        print(f"  {r.flow}: cold build fetched {cold_fetched / MIB:.2f} MiB, "
              f"pushed {cold_sent / MIB:.2f} MiB (image and cache)")  # fmt: skip
        ran = sorted({name for t in r.cached for name in t.ran})
        same = all(c.layers == w.layers for c, w in zip(r.cold, r.cached, strict=True))
        print(f"  {r.flow}: cached builds ran {ran or 'no RUN step'}; pushed the cold "
              f"build's layers for every platform: {'yes' if same else 'NO'}")  # fmt: skip
        ok &= not ran and same
    pb = next(r for r in results if r.flow == "polybuild")
    value = pb.ratio()
    if value is not None:
        verdict = "PASS" if value < GOAL else "FAIL"
        note = " (not checked with --quick)" if quick else ""
        print(f"  polybuild cached/cold {value:.1%} (goal: under {GOAL:.0%}): {verdict}{note}")
        ok &= quick or value < GOAL
    bk = next(r for r in results if r.flow == "BuildKit")
    if not bk.skipped:
        for kind in ("cold", "cached"):
            walls = [r.median(kind, "wall") for r in (pb, bk)]
            if walls[0] is not None and walls[1]:
                print(f"  {kind}: polybuild/BuildKit wall {walls[0] / walls[1]:.3f}")
    return ok


def run(args: argparse.Namespace, work: Path) -> bool:
    executable = nodes.executable_path()
    tarballs = bench.make_tarballs(work)
    pycache = None if args.keep_python_env else work / "pycache"
    polybuild = bench.Polybuild(executable, tarballs, pycache)
    print("== warming up polybuild (untimed build in a throwaway root)", flush=True)
    polybuild.warm_up(work)
    have_buildkit = (BUILDKIT / "buildkitd").exists() and (BUILDKIT / "buildctl").exists()
    with ExitStack() as stack:
        registry = peers.start_registry(stack, work)
        relay = CountingRelay(registry.host)
        stack.callback(relay.close)
        base = f"{relay.host}/library/busybox:latest"
        peers.push_busybox(polybuild, tarballs, base, work)
        print(f"polybuild: {executable}\nregistry: {registry.host}, through the counting relay "
              f"{relay.host} (busybox {', '.join(PLATFORMS)})")  # fmt: skip
        daemon = None
        if have_buildkit:
            daemon = peers.start_buildkitd(stack, work, relay.host)
            print(f"buildkitd: {peers.buildkitd_binary()} ({peers.daemon_version(daemon)})")
        else:
            print(f"buildkitd: skipped (no {BUILDKIT / 'buildkitd'} or buildctl)")
        b = Bench(work, relay, registry.host, polybuild, daemon)
        b.write_dockerfile(dockerfile(base, args.quick))
        load = os.getloadavg()[0]
        results = measure(b, args.trials)
    print(f"load average (1 min) before/after the trials: {load:.2f}/{os.getloadavg()[0]:.2f}")
    return report(results, args.trials, args.quick)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, help="cold+cached builds per flow (3; 1 quick)")
    parser.add_argument(
        "--quick", action="store_true", help="a tenth of the CPU loop and a 4 MiB layer"
    )
    parser.add_argument(
        "--keep-python-env",
        action="store_true",
        help="run polybuild with PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are",
    )
    args = parser.parse_args(argv)
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
    if (BUILDKIT / "buildkitd").exists() and not RUNC.exists():
        print(f"{RUNC} is missing: buildkitd needs it")
        return 1
    return peers.run_in_scratch(
        "polybuild-bench-cache-", lambda work: 0 if run(args, work) else 1, "daemon and registry"
    )


if __name__ == "__main__":
    raise SystemExit(main())
