"""Node benchmark: a two-platform build on two ssh nodes against the same build on one node
(and on this machine, for reference); prints build times cold and warm, the context bytes sent
per node, and ratios.

Run as root from the repository root: .venv/bin/python -m benchmarks.nodes [--trials 3]

The nodes are test hosts (tests/nodes/hosts.py): network namespaces with Debian's sshd and
data roots of their own, reached with the user's OpenSSH client. They share this machine's
CPUs and disk, so a second node adds no hardware: two-node/one-node is the cost of a second
node (ssh session, context transfer, layer fetch), not a speed-up. Builders `one` (host nb-a,
linux/amd64 and linux/386 pinned) and `two` (two-amd64 on nb-a, two-386 on nb-b) each build
both platforms, native here. busybox is imported into the client's data root only: each node
gets it from the client during the cold build. Each trial, per builder: fresh hosts and a
fresh client data root, a cold build, the identical warm build; times are medians, bytes come
from the `[NODE] context: sent N files (B bytes)` lines of --progress=plain. Exit status 1
when a build failed or a warm build sent context or ran a step. benchmarks/README.md has more.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.nodes.hosts import SshHost, SshHosts  # noqa: E402
from tests.nodes.netns import HostError  # noqa: E402

PLATFORMS = ("linux/amd64", "linux/386")
BASE_ARCHES = (("amd64", "linux/amd64"), ("i386", "linux/386"))  # Debian arch, platform
HOSTS = ("nb-a", "nb-b")
SMALL_FILES, SMALL_SIZE = 2000, 1024
BIG_FILES, BIG_SIZE = 2, 20 << 20
LOOP = 2_500_000  # busybox awk iterations: about 2 s natively on this machine
BUILD_TIMEOUT = 600.0
TAG = "bench-nodes:latest"

DOCKERFILE = f"""\
# syntax=docker/dockerfile:1
FROM busybox
COPY . /ctx
RUN awk 'BEGIN {{ s = 0; for (i = 0; i < {LOOP}; i++) s = (s + i * i) % 1000003; print s }}' \\
    > /sum && uname -m > /arch
"""

SENT = re.compile(
    r"\[(?P<node>[^\]]+)\] context: sent (?P<files>\d+) files \((?P<bytes>\d+) bytes\)"
)
# A step line: "#3 [two-386] [stage-0 2/3] COPY . /ctx" (on a node), "#3 [linux/386 stage-0
# 2/3] COPY . /ctx" (here); FROM is not counted (a node does not show it).
STEP = re.compile(r"^#(?P<id>\d+) (?P<name>(?:\[[^\]/]+\] )?\[[^\]]*\d+/\d+\] (?!FROM ).*)$")
CACHED = re.compile(r"^#(?P<id>\d+) CACHED$")


class MeasurementError(Exception):
    """A command the benchmark depends on failed (set-up or build)."""


@dataclass(frozen=True, slots=True)
class Builder:
    name: str
    summary: str
    nodes: tuple[tuple[str, str, str], ...]  # (node name, host, pinned platforms)


BUILDERS = (
    Builder("default", "this machine, no ssh (reference)", ()),
    Builder("one", "one node, both platforms", (("one", "nb-a", ",".join(PLATFORMS)),)),
    Builder(
        "two",
        "two nodes, one platform each",
        (("two-amd64", "nb-a", "linux/amd64"), ("two-386", "nb-b", "linux/386")),
    ),
)


@dataclass(frozen=True, slots=True)
class Build:
    """One timed build: its wall time, the context sent per node (files, bytes) and the steps
    it ran (not from a node's cache) out of all steps built on nodes."""

    seconds: float
    sent: dict[str, tuple[int, int]]
    steps: int
    ran: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Result:
    builder: Builder
    cold: list[Build] = field(default_factory=list)
    warm: list[Build] = field(default_factory=list)

    def median(self, kind: str) -> float | None:
        builds = self.cold if kind == "cold" else self.warm
        return statistics.median(b.seconds for b in builds) if builds else None


def parse_plain(stderr: str) -> tuple[dict[str, tuple[int, int]], int, tuple[str, ...]]:
    """(context sent per node, steps built on nodes, steps not from the cache) of a
    `--progress=plain` stream."""
    sent = {m["node"]: (int(m["files"]), int(m["bytes"])) for m in SENT.finditer(stderr)}
    steps: dict[str, str] = {}
    cached: set[str] = set()
    for line in stderr.splitlines():
        if step := STEP.match(line):
            steps.setdefault(step["id"], step["name"])
        elif hit := CACHED.match(line):
            cached.add(hit["id"])
    ran = tuple(name for id_, name in steps.items() if id_ not in cached)
    return sent, len(steps), ran


class Client:
    """`polybuild` on this machine: its own data root, the test hosts' ssh config."""

    def __init__(self, executable: Path, root: Path, ssh_env: dict[str, str], pycache: Path | None):
        self.executable = executable
        self.root = root
        env = dict(ssh_env)
        env.pop("BUILDKIT_PROGRESS", None)
        if pycache is not None:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(pycache)
        env["POLYBUILD_ROOT"] = str(root)
        self.env = env

    def run(self, *args: str | Path) -> tuple[float, subprocess.CompletedProcess[str]]:
        argv = [str(self.executable), *map(str, args)]
        command = f"polybuild {' '.join(argv[1:3])}"
        start = time.perf_counter()
        try:
            proc = subprocess.run(argv, env=self.env, capture_output=True, text=True,
                                  timeout=BUILD_TIMEOUT, check=False)  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise MeasurementError(f"{command} timed out after {BUILD_TIMEOUT:.0f} s") from exc
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            lines = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-8:]
            raise MeasurementError(f"{command}: exit {proc.returncode}: {' | '.join(lines)}")
        return seconds, proc

    def build(self, builder: str, context: Path, remote: bool) -> Build:
        seconds, proc = self.run(
            "build", "--builder", builder, "--platform", ",".join(PLATFORMS),
            "-t", TAG, "--load", "--progress=plain", context,
        )  # fmt: skip
        sent, steps, ran = parse_plain(proc.stderr)
        if not steps or remote != bool(sent):
            raise MeasurementError(f"{builder}: no step or unexpected context lines: {proc.stderr}")
        return Build(seconds, sent, steps, ran)


def make_context(directory: Path) -> int:
    """The build context: SMALL_FILES small files in 20 directories, BIG_FILES big ones of
    random bytes, the Dockerfile; returns its size in bytes."""
    directory.mkdir()
    per_dir = SMALL_FILES // 20
    for d in range(20):
        sub = directory / f"d{d:02d}"
        sub.mkdir()
        for f in range(per_dir):
            line = f"file {d}/{f}\n".encode()
            (sub / f"f{f:03d}.txt").write_bytes((line * SMALL_SIZE)[:SMALL_SIZE])
    for b in range(BIG_FILES):
        with open(directory / f"big{b}.bin", "wb") as out:
            for _ in range(BIG_SIZE >> 20):
                out.write(os.urandom(1 << 20))
    (directory / "Dockerfile").write_text(DOCKERFILE)
    return sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())


def fresh_hosts(hosts: SshHosts) -> dict[str, SshHost]:
    """The benchmark's hosts, made anew: empty data roots, caches, /tmp and /run."""
    for name in HOSTS:
        if name in hosts.hosts:
            hosts.remove(name)
    return {name: hosts(name) for name in HOSTS}


def prepare(
    client: Client, tarballs: dict[str, Path], builder: Builder, made: dict[str, SshHost]
) -> None:
    """A fresh client data root with busybox and `builder`."""
    shutil.rmtree(client.root, ignore_errors=True)
    client.root.mkdir(parents=True)
    for debian_arch, platform in BASE_ARCHES:
        client.run("import", "--platform", platform, tarballs[debian_arch], "busybox")
    for i, (node, host, pinned) in enumerate(builder.nodes):
        append = ["--append"] if i else []
        client.run("create", "--name", builder.name, *append, "--node", node,
                   "--platform", pinned, made[host].endpoint)  # fmt: skip


def measure(
    trials: int, executable: Path, work: Path, hosts: SshHosts, pycache: Path | None
) -> list[Result]:
    tarballs = {}
    for debian_arch, _ in BASE_ARCHES:
        out = work / f"busybox-{debian_arch}.tar"
        subprocess.run(
            [sys.executable, "-m", "polybuild.testing.busybox", "tar", debian_arch, out],
            check=True, capture_output=True,
        )  # fmt: skip
        tarballs[debian_arch] = out
    context = work / "context"
    size = make_context(context)
    print(f"context: {SMALL_FILES} x {SMALL_SIZE} B + {BIG_FILES} x {BIG_SIZE >> 20} MiB "
          f"+ Dockerfile = {size} bytes", flush=True)  # fmt: skip
    results = [Result(builder) for builder in BUILDERS]
    for trial in range(1, trials + 1):
        for result in results:
            name = result.builder.name
            fresh = "fresh hosts and client root" if result.builder.nodes else "fresh root"
            print(f"== trial {trial}/{trials}, builder {name}: {fresh}", flush=True)
            remote = bool(result.builder.nodes)
            made = fresh_hosts(hosts) if remote else {}
            env = made[HOSTS[0]].env if remote else dict(os.environ)
            client = Client(executable, work / "client-root", env, pycache)
            prepare(client, tarballs, result.builder, made)
            cold = client.build(name, context, remote)
            result.cold.append(cold)
            print(f"   cold {cold.seconds:.2f} s, sent {fmt_sent(cold.sent)}", flush=True)
            warm = client.build(name, context, remote)
            result.warm.append(warm)
            print(f"   warm {warm.seconds:.2f} s, sent {fmt_sent(warm.sent)}", flush=True)
    return results


def fmt_sent(sent: dict[str, tuple[int, int]]) -> str:
    parts = [f"{node} {files} files {size} B" for node, (files, size) in sorted(sent.items())]
    return ", ".join(parts) or "-"


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report_times(results: list[Result]) -> None:
    print(f"\n== build times, {','.join(PLATFORMS)}: median of {len(results[0].cold)} (wall s)")
    print(f"{'builder':<40} {'cold s':>8} {'warm s':>8} {'warm/cold':>10}")
    by_name = {r.builder.name: r for r in results}
    for r in results:
        cold, warm = r.median("cold"), r.median("warm")
        label = f"{r.builder.name}: {r.builder.summary}"
        print(f"{label:<40} {fmt(cold):>8} {fmt(warm):>8} {fmt(ratio(warm, cold), '.3f'):>10}")
    for a, b in (("two", "one"), ("one", "default")):
        label = f"{a}/{b}" + (" (two-node/one-node)" if a == "two" else " (one-node/here)")
        cold = ratio(by_name[a].median("cold"), by_name[b].median("cold"))
        warm = ratio(by_name[a].median("warm"), by_name[b].median("warm"))
        print(f"{label:<40} {fmt(cold, '.3f'):>8} {fmt(warm, '.3f'):>8}")


def report_sent(results: list[Result]) -> None:
    print("\n== context sent per node (the largest of the trials; all trials agree unless shown)")
    header = ("builder", "node", "cold files", "cold bytes", "warm files", "warm bytes")
    print("{:<8} {:<10} {:>10} {:>12} {:>10} {:>10}".format(*header))
    for r in results:
        nodes = sorted({node for b in r.cold + r.warm for node in b.sent})
        totals = [0, 0]
        for node in nodes:
            cold = {b.sent.get(node, (0, 0)) for b in r.cold}
            warm = {b.sent.get(node, (0, 0)) for b in r.warm}
            row = (*max(cold), *max(warm))
            totals = [totals[0] + row[1], totals[1] + row[3]]
            print("{:<8} {:<10} {:>10} {:>12} {:>10} {:>10}".format(r.builder.name, node, *row))
            if len(cold) > 1 or len(warm) > 1:
                print(f"   trials differ: cold {sorted(cold)}, warm {sorted(warm)}")
        if len(nodes) > 1:
            print("{:<8} {:<10} {:>10} {:>12} {:>10} {:>10}".format(r.builder.name, "total",
                  "", totals[0], "", totals[1]))  # fmt: skip


def report_checks(results: list[Result]) -> bool:
    """Print what the builds ran; returns whether every warm build sent and ran nothing."""
    print("\n== checks")
    ok = True
    for r in results:
        for kind, builds in (("cold", r.cold), ("warm", r.warm)):
            steps = sorted({b.steps for b in builds})
            ran = sorted({len(b.ran) for b in builds})
            print(f"  {r.builder.name} {kind}: {steps} steps, {ran} not from the cache")
        for warm in r.warm:
            if any(size for _, size in warm.sent.values()) or warm.ran:
                ok = False
                print(f"  FAIL {r.builder.name} warm: sent {fmt_sent(warm.sent)}; ran {warm.ran}")
    print(f"  every warm build sent no context and ran no step: {'PASS' if ok else 'FAIL'}")
    return ok


def executable_path() -> Path:
    beside = Path(sys.executable).parent / "polybuild"
    found = beside if beside.exists() else shutil.which("polybuild")
    if found is None:
        raise MeasurementError("polybuild executable not found next to the interpreter or on PATH")
    return Path(found)


def prime_bytecode(pycache: Path) -> None:
    """Compile polybuild into the client's private bytecode cache, as an installation has it."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    code = "import compileall, polybuild; compileall.compile_dir(polybuild.__path__[0], quiet=1)"
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt as Ctrl-C does, so the hosts are removed either way."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def close(hosts: SshHosts) -> None:
    """Remove the hosts; a second Ctrl-C or SIGTERM waits until they are gone."""
    blocked = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        hosts.close()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, blocked)


def run(args: argparse.Namespace, work: Path) -> bool:
    executable = executable_path()
    pycache = None if args.keep_python_env else work / "pycache"
    if pycache is not None:
        prime_bytecode(pycache)
    print(f"polybuild: {executable}; base image: busybox imported into the client's data "
          "root only (streamed to each node by the cold build)")  # fmt: skip
    print(f"platforms {','.join(PLATFORMS)} (both native here); the nodes are test hosts "
          f"sharing this machine's {os.cpu_count()} CPUs and disk")  # fmt: skip
    hosts = SshHosts(work / "hosts")
    try:
        results = measure(args.trials, executable, work, hosts, pycache)
    finally:
        close(hosts)
    report_times(results)
    report_sent(results)
    return report_checks(results)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="cold+warm builds per builder (3)")
    parser.add_argument(
        "--keep-python-env",
        action="store_true",
        help="run the client with PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are",
    )
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("run as root: the benchmark makes network namespaces (test hosts)")
        return 1
    for tool in ("ip", "unshare", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing (scripts/setup)")
            return 1
    work = Path(tempfile.mkdtemp(prefix="polybuild-bench-nodes-"))
    try:
        with interruptible():
            return 0 if run(args, work) else 1
    except (MeasurementError, HostError) as exc:
        print(f"FAILED: {exc}")
        return 1
    except KeyboardInterrupt:
        print("interrupted: test hosts removed")
        return 130
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
