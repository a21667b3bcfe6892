"""Build benchmark: cold and warm three-platform builds with polybuild and buildah; prints ratios.

Run: .venv/bin/python benchmarks/build.py [--quick] [--workload NAME] [--install-peers]

Workloads, each built for linux/amd64,linux/arm64,linux/arm/v7 on a busybox base made from
Debian's busybox-static packages (no registry is needed):

  seed          Docker's cross-compile example (a $BUILDPLATFORM build stage, COPY --from)
  emulated-cpu  a CPU loop in busybox awk (emulated for arm64 and arm/v7) plus a 64 MiB layer
  big-context   a context of 10,000 small files plus one 100 MiB file, COPY . /ctx, then a RUN

Each tool gets a fresh data root per workload: the base image is imported (not timed in the
build columns), then the cold build and an identical warm build are timed wall-clock. The warm
build must run no container: for polybuild every completed vertex of `--progress=rawjson` must
be `cached`; for buildah every step must say "Using cache". The target is a polybuild warm
build under 10% of its cold build; targets are printed, not asserted. The exit status is 1
only when a measurement failed outright (a build or the base import failed).

polybuild runs with its bytecode cached in a private PYTHONPYCACHEPREFIX (this environment may
set PYTHONDONTWRITEBYTECODE, which makes every CLI start compile ~120 modules), primed by one
untimed warm-up build; `--keep-python-env` measures the environment as it is instead.

buildah (Debian 12: 1.28) is the peer when installed (`--install-peers` installs it with apt):
private --root/--runroot/TMPDIR, `--storage-driver overlay`, `--isolation oci` with runc (as
polybuild), `--layers` (its cache is off by default) and `--pull=never`; the base is a manifest
list `localhost/busybox` of three images committed from the same tarballs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

PLATFORMS = ("linux/amd64", "linux/arm64", "linux/arm/v7")
# Debian architecture of the busybox-static package -> (OCI architecture, variant, platform)
BASE_ARCHES = (
    ("amd64", "amd64", "", "linux/amd64"),
    ("arm64", "arm64", "", "linux/arm64"),
    ("armhf", "arm", "v7", "linux/arm/v7"),
)
NATIVE = {"x86_64": "linux/amd64", "aarch64": "linux/arm64"}.get(os.uname().machine, "")
TARGET_WARM_RATIO = 0.10
BUILD_TIMEOUT = 600.0
MIB = 1 << 20

SEED_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM busybox AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM busybox
COPY --from=build /log /log
"""

# About 0.25 s natively, 3-4 s under QEMU per emulated platform.
EMULATED_CPU_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM busybox
RUN awk 'BEGIN { s = 0; for (i = 0; i < 1000000; i++) s = (s + i * i) % 1000003; print s }' \\
    > /sum && uname -m > /arch
RUN dd if=/dev/urandom of=/blob bs=1M count=64 2>/dev/null && ls -l /blob
"""

BIG_CONTEXT_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM busybox
COPY . /ctx
RUN find /ctx -type f | wc -l > /count
"""


WARM_UP_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM busybox AS build
RUN echo warm > /warm
FROM busybox
COPY --from=build /warm /warm
COPY . /ctx
RUN true
"""


def make_empty_context(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)


def make_big_context(directory: Path) -> None:
    """10,000 small files in 100 directories plus one 100 MiB file of random bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    for d in range(100):
        sub = directory / f"d{d:03d}"
        sub.mkdir()
        for f in range(100):
            (sub / f"f{f:03d}.txt").write_text(f"file {d}/{f}\n" * (1 + (d * 100 + f) % 20))
    with open(directory / "big.bin", "wb") as out:
        for _ in range(100):
            out.write(os.urandom(MIB))


@dataclass(frozen=True, slots=True)
class Workload:
    name: str
    summary: str
    dockerfile: str
    make_context: Callable[[Path], None]


WORKLOADS = (
    Workload("seed", "Docker's cross-compile example", SEED_DOCKERFILE, make_empty_context),
    Workload(
        "emulated-cpu",
        "CPU loop under emulation + 64 MiB layer",
        EMULATED_CPU_DOCKERFILE,
        make_empty_context,
    ),
    Workload(
        "big-context",
        "10,000 small files + 100 MiB context",
        BIG_CONTEXT_DOCKERFILE,
        make_big_context,
    ),
)


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


@dataclass(slots=True)
class ToolResult:
    tool: str
    base: float | None = None
    cold: Build | None = None
    warm: Build | None = None
    skipped: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        if self.skipped:
            return False
        return any(b is None or not b.ok for b in (self.cold, self.warm))

    def warm_ratio(self) -> float | None:
        return ratio(seconds_of(self.warm), seconds_of(self.cold))


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


# --- polybuild ------------------------------------------------------------------------------


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

    def env(self, root: Path) -> dict[str, str]:
        drop = {"BUILDKIT_PROGRESS"}
        if self.pycache is not None:
            drop.add("PYTHONDONTWRITEBYTECODE")
        env = {k: v for k, v in os.environ.items() if k not in drop}
        if self.pycache is not None:
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        env["POLYBUILD_ROOT"] = str(root)
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

    def check_image(self, root: Path, tag: str) -> str:
        """A note when the built image does not list the three platforms in `polybuild images`."""
        listing = checked([self.executable, "images"], self.env(root))
        repository, _, version = tag.partition(":")
        for line in listing.splitlines():
            fields = line.split()
            if fields[:2] == [repository, version]:
                missing = [p for p in PLATFORMS if p not in line]
                return f"image {tag} lacks {', '.join(missing)}" if missing else ""
        return f"image {tag} not in `polybuild images`"


# --- buildah --------------------------------------------------------------------------------

BUILDAH_STEP = re.compile(
    r"^(?:\[(?P<platform>[^\]]*/[^\]]*)\] )?(?:\[\d+/\d+\] )?STEP \d+/\d+: (.*)$"
)


def parse_buildah_steps(stdout: str) -> tuple[int, list[tuple[str, str]]]:
    """(steps, [(platform, step) not from the cache]) from buildah's output; FROM not counted.

    Buildah prints "--> Using cache ID" under a step it did not run; the platform prefix of
    multi-platform builds tells emulated steps apart.
    """
    steps: list[tuple[str, str, bool]] = []
    for line in stdout.splitlines():
        match = BUILDAH_STEP.match(line)
        if match:
            instruction = match.group(2)
            if not instruction.upper().startswith("FROM "):
                steps.append((match.group("platform") or "", instruction, False))
        elif line.startswith("--> Using cache") and steps:
            platform, instruction, _ = steps[-1]
            steps[-1] = (platform, instruction, True)
    return len(steps), [(p, s) for p, s, cached in steps if not cached]


class Buildah:
    name = "buildah"

    def __init__(self, executable: str, tarballs: dict[str, Path], storage: str, isolation: str):
        self.executable = executable
        self.tarballs = tarballs
        self.storage = storage
        self.isolation = isolation

    def argv(self, root: Path, *args: str | Path) -> list[str | Path]:
        return [
            self.executable,
            "--root",
            root / "storage",
            "--runroot",
            root / "run",
            "--storage-driver",
            self.storage,
            *args,
        ]

    def env(self, root: Path) -> dict[str, str]:
        (root / "tmp").mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(root / "tmp")}

    def prepare(self, root: Path) -> float:
        start = time.perf_counter()
        env = self.env(root)
        images = []
        for debian_arch, arch, variant, _ in BASE_ARCHES:
            platform_flags = ["--arch", arch, *(["--variant", variant] if variant else [])]
            container = f"bench-base-{debian_arch}"
            image = f"localhost/busybox-{debian_arch}"
            checked(self.argv(root, "from", "--name", container, *platform_flags, "scratch"), env)
            checked(self.argv(root, "add", container, self.tarballs[debian_arch], "/"), env)
            checked(self.argv(root, "config", "--os", "linux", *platform_flags, container), env)
            checked(self.argv(root, "commit", "-q", container, image), env)
            checked(self.argv(root, "rm", container), env)
            images.append(image)
        checked(self.argv(root, "manifest", "create", "localhost/busybox"), env)
        for image in images:
            checked(
                self.argv(
                    root, "manifest", "add", "localhost/busybox", f"containers-storage:{image}"
                ),
                env,
            )
        return time.perf_counter() - start

    def build(self, root: Path, tag: str, dockerfile: Path, context: Path) -> Build:
        argv = self.argv(
            root,
            "build",
            "--layers",
            "--pull=never",
            "--isolation",
            self.isolation,
            "--platform",
            ",".join(PLATFORMS),
            "--manifest",
            f"localhost/{tag}",
            "-f",
            dockerfile,
            context,
        )
        seconds, proc = run(argv, self.env(root))
        steps, ran = parse_buildah_steps(proc.stdout)
        result = Build(
            seconds=seconds,
            ok=proc.returncode == 0,
            steps=steps,
            executed=[f"[{p}] {s}" for p, s in ran],
            emulated=sum(
                1 for p, s in ran if s.startswith("RUN ") and NATIVE and p and p != NATIVE
            ),
        )
        if proc.returncode != 0:
            result.error = f"exit {proc.returncode}: {tail(proc)}"
        elif not steps:
            result.ok = False
            result.error = "no build step in buildah's output"
        return result

    def release(self, root: Path) -> None:
        """Unmount buildah's working containers before the root is deleted."""
        if (root / "storage").exists():
            run(self.argv(root, "rm", "--all"), self.env(root), timeout=120)


def find_buildah(install: bool) -> tuple[str | None, str]:
    """(path, note): buildah's path and version, or None and why it is skipped."""
    path = shutil.which("buildah")
    if path is None and install:
        print("== installing buildah with apt (--install-peers)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _, proc = run(["apt-get", "install", "-y", "-q", "buildah"], env, timeout=900)
        if proc.returncode != 0:
            return None, f"apt-get install buildah failed: {tail(proc)}"
        path = shutil.which("buildah")
    if path is None:
        return None, "buildah is not installed (pass --install-peers to install it with apt)"
    _, proc = run([path, "--version"], timeout=60)
    return path, proc.stdout.strip()


# --- mounts and clean-up --------------------------------------------------------------------


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


# --- the benchmark --------------------------------------------------------------------------


def measure(
    tool: Polybuild | Buildah, workload: Workload, work: Path, dockerfile: Path, context: Path
) -> ToolResult:
    root = work / f"{tool.name}-{workload.name}"
    root.mkdir()
    result = ToolResult(tool.name)
    tag = f"bench-{workload.name}:latest"
    try:
        print(f"   {tool.name}: base image", flush=True)
        result.base = tool.prepare(root)
        print(f"   {tool.name}: cold build", flush=True)
        result.cold = tool.build(root, tag, dockerfile, context)
        if result.cold.ok:
            print(f"   {tool.name}: warm build", flush=True)
            result.warm = tool.build(root, tag, dockerfile, context)
        if isinstance(tool, Polybuild) and result.warm and result.warm.ok:
            note = tool.check_image(root, tag)
            if note:
                result.notes.append(note)
    except MeasurementError as exc:
        result.notes.append(f"FAILED: {exc}")
    finally:
        if isinstance(tool, Buildah):
            tool.release(root)
        leaked = remove_tree(root)
        if leaked:
            result.notes.append(f"mounts left under its root (unmounted): {', '.join(leaked)}")
    return result


def fmt_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def seconds_of(build: Build | None) -> float | None:
    return build.seconds if build is not None and build.ok else None


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def report(workload: Workload, results: list[ToolResult]) -> list[str]:
    """Print a workload's table and checks; returns its verdict lines for the summary."""
    print(f"\n== {workload.name}: {workload.summary} ({','.join(PLATFORMS)})")
    print(f"{'tool':<20} {'base s':>7} {'cold s':>8} {'warm s':>8} {'warm/cold':>10}")
    for r in results:
        if r.skipped:
            print(f"{r.tool:<20} skipped: {r.skipped}")
            continue
        print(
            f"{r.tool:<20} {fmt_seconds(r.base):>7} {fmt_seconds(seconds_of(r.cold)):>8} "
            f"{fmt_seconds(seconds_of(r.warm)):>8} {fmt_ratio(r.warm_ratio()):>10}"
        )
    by_tool = {r.tool: r for r in results if not r.skipped}
    pb, peer = by_tool.get("polybuild"), by_tool.get("buildah")
    if pb and peer:
        cold = ratio(seconds_of(pb.cold), seconds_of(peer.cold))
        warm = ratio(seconds_of(pb.warm), seconds_of(peer.warm))
        print(
            f"{'polybuild/buildah':<20} {fmt_ratio(ratio(pb.base, peer.base)):>7} "
            f"{fmt_ratio(cold):>8} {fmt_ratio(warm):>8}"
        )
    for r in results:
        if r.skipped:
            continue
        if r.cold:
            print(f"  {r.tool} cold: {r.cold.describe()}")
        if r.warm:
            print(f"  {r.tool} warm: {r.warm.describe()}")
            for name in r.warm.executed:
                print(f"    ran on the warm build: {name}")
        for note in r.notes:
            print(f"  {r.tool}: {note}")
    if pb is None:
        return []
    warm_ratio = pb.warm_ratio()
    if warm_ratio is None or pb.warm is None:
        return [f"{workload.name}: polybuild measurement FAILED"]
    speed = "PASS" if warm_ratio < TARGET_WARM_RATIO else "FAIL"
    no_container = "PASS" if not pb.warm.executed else "FAIL"
    verdict = (
        f"warm/cold {warm_ratio:.1%} (target < {TARGET_WARM_RATIO:.0%}): {speed}; "
        f"warm build ran no container: {no_container}"
    )
    print(f"  polybuild target: {verdict}")
    return [f"{workload.name}: {verdict}"]


def make_tarballs(directory: Path) -> dict[str, Path]:
    tarballs = {}
    for debian_arch, *_ in BASE_ARCHES:
        out = directory / f"busybox-{debian_arch}.tar"
        checked([sys.executable, "-m", "polybuild.testing.busybox", "tar", debian_arch, out])
        tarballs[debian_arch] = out
    return tarballs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [w.name for w in WORKLOADS]
    parser.add_argument("--quick", action="store_true", help="only the seed workload")
    parser.add_argument(
        "--workload", action="append", choices=names, help="run this workload (repeatable)"
    )
    parser.add_argument(
        "--install-peers", action="store_true", help="install buildah with apt when missing"
    )
    parser.add_argument("--no-peers", action="store_true", help="measure polybuild only")
    parser.add_argument(
        "--keep-python-env",
        action="store_true",
        help="run polybuild with PYTHONDONTWRITEBYTECODE/PYTHONPYCACHEPREFIX as they are",
    )
    parser.add_argument("--buildah-storage-driver", default="overlay", help="default: overlay")
    parser.add_argument("--buildah-isolation", default="oci", help="oci (runc) or chroot")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    selected = ["seed"] if args.quick else args.workload or [w.name for w in WORKLOADS]
    workloads = [w for w in WORKLOADS if w.name in selected]

    executable = Path(sys.executable).parent / "polybuild"
    if not executable.exists():
        found = shutil.which("polybuild")
        if found is None:
            print("polybuild executable not found next to the interpreter or on PATH")
            return 1
        executable = Path(found)

    buildah_path, buildah_note = (
        (None, "--no-peers") if args.no_peers else find_buildah(args.install_peers)
    )
    print(f"polybuild: {executable}")
    if args.keep_python_env:
        print("polybuild python: this environment as it is (--keep-python-env)")
    else:
        print(
            "polybuild python: bytecode cached in a private PYTHONPYCACHEPREFIX "
            "(PYTHONDONTWRITEBYTECODE dropped), as in a normal installation"
        )
    print(f"buildah: {buildah_path or 'skipped'} ({buildah_note})")
    if buildah_path:
        print(
            f"buildah settings: --storage-driver {args.buildah_storage_driver}, "
            f"--isolation {args.buildah_isolation}, --layers, --pull=never, private roots"
        )

    overlays_before = overlay_mount_count()
    failed = False
    verdicts: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="polybuild-bench-"))
    try:
        tarballs = make_tarballs(work)
        pycache = None if args.keep_python_env else work / "pycache"
        polybuild = Polybuild(executable, tarballs, pycache)
        print("\n== warming up polybuild (untimed build in a throwaway root)", flush=True)
        polybuild.warm_up(work)
        tools: list[Polybuild | Buildah] = [polybuild]
        if buildah_path:
            tools.append(
                Buildah(buildah_path, tarballs, args.buildah_storage_driver, args.buildah_isolation)
            )
        for workload in workloads:
            print(f"\n== preparing {workload.name}", flush=True)
            dockerfile = work / f"{workload.name}.Dockerfile"
            dockerfile.write_text(workload.dockerfile)
            context = work / f"context-{workload.name}"
            workload.make_context(context)
            results = [measure(tool, workload, work, dockerfile, context) for tool in tools]
            if not buildah_path:
                results.append(ToolResult("buildah", skipped=buildah_note))
            failed |= any(r.failed for r in results)
            verdicts += report(workload, results)
            shutil.rmtree(context, ignore_errors=True)
    except MeasurementError as exc:
        print(f"FAILED: {exc}")
        failed = True
    finally:
        leaked = remove_tree(work)
        if leaked:
            print(f"WARNING: mounts left under {work} (unmounted): {', '.join(leaked)}")
    overlays_after = overlay_mount_count()

    print("\n== summary (target: a warm build under 10% of the cold one, running no container)")
    for verdict in verdicts:
        print(f"  {verdict}")
    print(f"  overlay mounts before/after: {overlays_before}/{overlays_after}")
    if overlays_after > overlays_before:
        print(
            f"WARNING: {overlays_after - overlays_before} overlay mounts more than before the run"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
