"""Running the tools the benchmarks time: commands with their wall and CPU time, polybuild's
rawjson progress, the busybox tarballs, and the temporary roots (unmounted and removed)."""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
# Debian architecture of the busybox-static package -> (OCI architecture, variant, platform)
BASE_ARCHES = (
    ("amd64", "amd64", "", "linux/amd64"),
    ("arm64", "arm64", "", "linux/arm64"),
    ("armhf", "arm", "v7", "linux/arm/v7"),
)
# Three more for scale.py's 1-to-6-platform curve: 386 native on x86_64, the others emulated.
MORE_ARCHES = (
    ("i386", "386", "", "linux/386"),
    ("ppc64el", "ppc64le", "", "linux/ppc64le"),
    ("s390x", "s390x", "", "linux/s390x"),
)
NATIVE = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(os.uname().machine, "")
BUILD_TIMEOUT = 600.0
MIB = 1 << 20

WARM_UP_DOCKERFILE = """\
FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo warm > /warm
FROM busybox
COPY --from=build /warm /warm
COPY . /ctx
RUN true
"""


@dataclass(slots=True)
class Build:
    """One timed build and what it executed (steps that did not come from the cache)."""

    seconds: float
    ok: bool
    steps: int = 0
    executed: list[str] = field(default_factory=list)
    emulated: int = 0
    error: str = ""

    def describe(self) -> str:
        if not self.ok:
            return f"FAILED: {self.error}"
        text = f"{self.steps - len(self.executed)}/{self.steps} steps cached"
        if self.emulated:
            text += f", {self.emulated} ran emulated"
        return text


class MeasurementError(Exception):
    """A command the benchmark depends on failed (base import, peer set-up)."""


def run(
    argv: Sequence[str | Path],
    env: dict[str, str] | None = None,
    timeout: float = BUILD_TIMEOUT,
) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run a command, capturing its output; returns (wall seconds, result)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [str(a) for a in argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MeasurementError(f"{argv[0]} timed out after {timeout:.0f} s") from exc
    return time.perf_counter() - start, proc


def checked(argv: Sequence[str | Path], env: dict[str, str] | None = None) -> str:
    """stdout of a set-up command; raises MeasurementError when it fails."""
    _, proc = run(argv, env)
    if proc.returncode != 0:
        raise MeasurementError(f"{' '.join(map(str, argv))}: exit {proc.returncode}: {tail(proc)}")
    return proc.stdout


def tail(proc: subprocess.CompletedProcess[str], lines: int = 5) -> str:
    text = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
    return " | ".join(text[-lines:])


@dataclass(frozen=True, slots=True)
class Vertex:
    digest: str
    name: str
    completed: bool
    cached: bool
    emulated: bool
    error: str


def parse_rawjson(stderr: str) -> list[Vertex]:
    """Vertices of a `--progress=rawjson` stream, later updates merged into earlier ones."""
    merged: dict[str, dict[str, object]] = {}
    for line in stderr.splitlines():
        if not line.startswith("{"):
            continue
        try:
            status = json.loads(line)
        except json.JSONDecodeError:
            continue
        for vertex in status.get("vertexes") or []:
            merged.setdefault(str(vertex.get("digest")), {}).update(vertex)
    return [
        Vertex(
            digest=digest,
            name=str(v.get("name", "")),
            completed="completed" in v,
            cached=bool(v.get("cached")),
            emulated=bool(v.get("emulated")),
            error=str(v.get("error") or ""),
        )
        for digest, v in merged.items()
    ]


class Polybuild:
    name = "polybuild"

    def __init__(
        self, executable: Path, tarballs: dict[str, Path], pycache: Path | None = None
    ) -> None:
        self.executable = executable
        self.tarballs = tarballs
        self.pycache = pycache
        self.config: Path | None = None  # $POLYBUILD_CONFIG, when set

    def plain_http(self, work: Path, host: str) -> None:
        """Reach registry `host` over plain HTTP, as the peers' daemons are told to
        (`http = true` in buildkitd.toml): no HTTPS attempt before it."""
        self.config = work / "polybuild.toml"
        self.config.write_text(f'[registry."{host}"]\nhttp = true\n')

    def env(self, root: Path) -> dict[str, str]:
        drop = {"BUILDKIT_PROGRESS"}
        if self.pycache is not None:
            drop.add("PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        if self.pycache is not None:
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        env["POLYBUILD_ROOT"] = str(root)
        # buildctl adds no attestation unless asked; buildx's default provenance is not
        # part of the work compared
        env["BUILDX_NO_DEFAULT_ATTESTATIONS"] = "1"
        if self.config is not None:
            env["POLYBUILD_CONFIG"] = str(self.config)
        return env

    def warm_up(self, work: Path) -> None:
        """Fill the bytecode cache and the page cache with one untimed build in a throwaway root.

        Without it the first measured build would also pay for compiling polybuild's modules
        (every build does when PYTHONDONTWRITEBYTECODE is set and there is no cache).
        """
        root = work / "polybuild-warm-up"
        root.mkdir()
        try:
            if self.pycache is not None:
                package = checked(
                    [sys.executable, "-c", "import polybuild; print(polybuild.__path__[0])"]
                ).strip()
                checked([sys.executable, "-m", "compileall", "-q", package], self.env(root))
            dockerfile = root / "Dockerfile"
            dockerfile.write_text(WARM_UP_DOCKERFILE)
            context = root / "context"
            context.mkdir()
            (context / "file.txt").write_text("warm-up\n")
            self.prepare(root)
            build = self.build(root, "bench-warm-up:latest", dockerfile, context)
            if not build.ok:
                raise MeasurementError(f"warm-up build: {build.error}")
        finally:
            remove_tree(root)

    def prepare(self, root: Path) -> float:
        start = time.perf_counter()
        for debian_arch, _, _, platform in BASE_ARCHES:
            checked(
                [
                    self.executable,
                    "import",
                    "--platform",
                    platform,
                    self.tarballs[debian_arch],
                    "busybox",
                ],
                self.env(root),
            )
        return time.perf_counter() - start

    def build(self, root: Path, tag: str, dockerfile: Path, context: Path) -> Build:
        argv: list[str | Path] = [
            self.executable,
            "build",
            "--platform",
            ",".join(PLATFORMS),
            "-t",
            tag,
            "-f",
            dockerfile,
            "--load",
            "--progress=rawjson",
            context,
        ]
        seconds, proc = run(argv, self.env(root))
        vertices = parse_rawjson(proc.stderr)
        completed = [v for v in vertices if v.completed]
        ran = [v for v in completed if not v.cached]
        result = Build(
            seconds=seconds,
            ok=proc.returncode == 0,
            steps=len(completed),
            executed=[v.name for v in ran],
            emulated=sum(v.emulated for v in ran),
        )
        if proc.returncode != 0:
            errors = [f"{v.name}: {v.error}" for v in vertices if v.error]
            result.error = f"exit {proc.returncode}: " + ("; ".join(errors) or tail(proc))
        elif not completed:
            result.ok = False
            result.error = "no completed vertex in the rawjson progress stream"
        return result


def mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4].replace("\\040", " ") for line in f]


def overlay_mount_count() -> int:
    with open("/proc/self/mountinfo") as f:
        return sum("overlay" in line for line in f)


def remove_tree(path: Path) -> list[str]:
    """Delete a temporary root; mounts left under it are reported, then unmounted (ours)."""
    prefix = str(path.resolve()) + "/"
    leaked = sorted((m for m in mount_points() if m.startswith(prefix)), key=len, reverse=True)
    for mount in leaked:
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)
    return leaked


def make_tarballs(
    directory: Path, arches: Sequence[tuple[str, str, str, str]] = BASE_ARCHES
) -> dict[str, Path]:
    """busybox root filesystem tarballs (Debian's busybox-static), by Debian architecture."""
    tarballs = {}
    for debian_arch, *_ in arches:
        out = directory / f"busybox-{debian_arch}.tar"
        checked([sys.executable, "-m", "polybuild.testing.busybox", "tar", debian_arch, out])
        tarballs[debian_arch] = out
    return tarballs


def executable() -> Path:
    """The polybuild executable next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "polybuild"
    found = beside if beside.exists() else shutil.which("polybuild")
    if found is None:
        raise MeasurementError("polybuild executable not found next to the interpreter or on PATH")
    return Path(found)


def children_cpu() -> float:
    """User+system seconds of this process's waited-for children (and theirs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_tree(pid: int) -> dict[int, list[str]]:
    """{pid: its /proc/PID/stat fields after the command name} of `pid` and its live
    descendants; processes gone meanwhile are left out."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        children = [c for c, f in stats.items() if int(f[1]) == parent and c not in tree]
        tree.update(children)
        frontier += children
    return {p: stats[p] for p in tree if p in stats}


def process_tree_cpu(pid: int) -> float:
    """User+system seconds of a running process, its waited-for children (cutime, cstime) and
    its live descendants (utime, stime, cutime, cstime of each)."""
    ticks = sum(sum(int(t) for t in f[11:15]) for f in process_tree(pid).values())
    return ticks / os.sysconf("SC_CLK_TCK")


def process_tree_rss(pid: int) -> tuple[int, int]:
    """(resident, anonymous resident) bytes summed over a running process and its live
    descendants (VmRSS and RssAnon of /proc/PID/status): resident counts the page-cache pages
    a process maps (an mmap'd blob), anonymous only its own memory."""
    rss = anon = 0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon"):
                kib = int(value.split()[0]) * 1024
                rss += kib if key == "VmRSS" else 0
                anon += kib if key == "RssAnon" else 0
    return rss, anon
