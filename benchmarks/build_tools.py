"""The build tools as the benchmarks drive them, each able to make its state cold and to run
one timed build to an OCI tarball: polybuild (a fresh data root per cold), BuildKit (buildctl
on a private daemon, `buildctl prune --all` per cold) and buildah (a fresh root per cold)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from benchmarks import peers, runner

PLATFORMS = runner.PLATFORMS

# A Dockerfile step's vertex, "[2/2] COPY ...", "[linux/arm64 build 2/2] RUN ...", but FROM:
# neither tool marks FROM, the metadata, context or export vertices cached in a warm build.
STEP = re.compile(r"\[[^\]]*\d+/\d+\] (?!FROM )")


@dataclass(frozen=True, slots=True)
class Run:
    """One build: wall and CPU seconds, vertices completed, Dockerfile steps (RUN, COPY, ...,
    not FROM) completed, those of them not from the cache, and the other vertices not cached
    (FROM, load metadata/context/definition, export: never marked cached by either tool)."""

    wall: float
    cpu: float
    vertices: int
    steps: int
    ran: tuple[str, ...]
    other_uncached: tuple[str, ...]


class Tool(Protocol):
    name: str

    def make_cold(self) -> None: ...
    def build(self, dockerfile_dir: Path, context: Path, out: Path) -> Run: ...
    def close(self) -> None: ...


def from_rawjson(tool: str, wall: float, cpu: float, stderr: str) -> Run:
    completed = [v for v in runner.parse_rawjson(stderr) if v.completed]
    if not completed:
        raise runner.MeasurementError(f"{tool}: no completed vertex in its rawjson progress")
    steps = [v for v in completed if STEP.search(v.name)]
    ran = tuple(v.name for v in steps if not v.cached)
    other = tuple(v.name for v in completed if not v.cached and not STEP.search(v.name))
    return Run(wall, cpu, len(completed), len(steps), ran, other)


def check_output(tool: str, out: Path, platforms: Sequence[str] = PLATFORMS) -> None:
    found = peers.oci_platforms(out)
    out.unlink()
    if found != sorted(platforms):
        raise runner.MeasurementError(f"{tool}: its OCI tarball holds {found}")


class PolybuildTool:
    name = "polybuild"

    def __init__(
        self,
        client: runner.Polybuild,
        work: Path,
        platforms: Sequence[str] = PLATFORMS,
        timeout: float = runner.BUILD_TIMEOUT,
    ) -> None:
        self.client = client
        self.timeout = timeout
        self.work = work
        self.platforms = tuple(platforms)
        self.roots = 0
        self.root: Path | None = None

    def make_cold(self) -> None:
        """A fresh data root: no base, no cache (as `buildctl prune --all` leaves BuildKit)."""
        self.close()
        self.roots += 1
        self.root = self.work / f"polybuild-root-{self.roots}"
        self.root.mkdir()

    def build(self, dockerfile_dir: Path, context: Path, out: Path) -> Run:
        assert self.root is not None
        argv: list[str | Path] = [
            self.client.executable, "build", "--platform", ",".join(self.platforms),
            "-f", dockerfile_dir / "Dockerfile", "-o", f"type=oci,dest={out}",
            "--progress=rawjson", context,
        ]  # fmt: skip
        before = runner.children_cpu()
        wall, proc = runner.run(argv, self.client.env(self.root), self.timeout)
        cpu = runner.children_cpu() - before
        if proc.returncode != 0:
            raise runner.MeasurementError(f"polybuild: exit {proc.returncode}: {runner.tail(proc)}")
        check_output(self.name, out, self.platforms)
        return from_rawjson(self.name, wall, cpu, proc.stderr)

    def close(self) -> None:
        if self.root is not None:
            leaked = runner.remove_tree(self.root)
            if leaked:
                print(f"   WARNING: mounts left under {self.root} (unmounted): {leaked}")
            self.root = None


class BuildkitTool:
    name = "BuildKit"

    def __init__(self, daemon: peers.BuildkitDaemon) -> None:
        self.daemon = daemon

    def make_cold(self) -> None:
        runner.checked(peers.buildctl(self.daemon, "prune", "--all"))

    def build(self, dockerfile_dir: Path, context: Path, out: Path) -> Run:
        argv = peers.buildctl_build(self.daemon, context, dockerfile_dir, f"type=oci,dest={out}")
        before = runner.children_cpu() + peers.daemon_cpu(self.daemon)
        wall, proc = runner.run(argv)
        cpu = runner.children_cpu() + peers.daemon_cpu(self.daemon) - before
        if proc.returncode != 0:
            raise runner.MeasurementError(f"buildctl: exit {proc.returncode}: {runner.tail(proc)}")
        check_output(self.name, out)
        return from_rawjson(self.name, wall, cpu, proc.stderr)

    def close(self) -> None:
        pass


class BuildahTool:
    """buildah with private roots, runc (`--isolation oci`), overlay, `--layers`; the base is
    pulled from the registry over plain HTTP (`--tls-verify=false`)."""

    name = "buildah"

    def __init__(self, executable: str, work: Path) -> None:
        self.executable = executable
        self.work = work
        self.roots = 0
        self.root: Path | None = None

    def argv(self, *args: str | Path) -> list[str | Path]:
        assert self.root is not None
        return [self.executable, "--root", self.root / "storage", "--runroot", self.root / "run",
                "--storage-driver", "overlay", *args]  # fmt: skip

    def env(self) -> dict[str, str]:
        assert self.root is not None
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        return {**os.environ, "TMPDIR": str(self.root / "tmp")}

    def make_cold(self) -> None:
        self.close()
        self.roots += 1
        self.root = self.work / f"buildah-root-{self.roots}"
        self.root.mkdir()

    def build(self, dockerfile_dir: Path, context: Path, out: Path) -> Run:
        runner.run(self.argv("manifest", "rm", "localhost/bench"), self.env())  # untimed
        before = runner.children_cpu()
        wall, proc = runner.run(
            self.argv("build", "--layers", "--tls-verify=false", "--isolation", "oci",
                      "--platform", ",".join(PLATFORMS), "--manifest", "localhost/bench",
                      "-f", dockerfile_dir / "Dockerfile", context),
            self.env(),
        )  # fmt: skip
        if proc.returncode != 0:
            raise runner.MeasurementError(f"buildah: exit {proc.returncode}: {runner.tail(proc)}")
        steps, ran = peers.parse_buildah_steps(proc.stdout)
        push_wall, push = runner.run(
            self.argv("manifest", "push", "--all", "localhost/bench", f"oci-archive:{out}"),
            self.env(),
        )
        cpu = runner.children_cpu() - before
        if push.returncode != 0:
            raise runner.MeasurementError(f"buildah push: {runner.tail(push)}")
        check_output(self.name, out)
        ran_names = tuple(f"[{p}] {s}" for p, s in ran)
        return Run(wall + push_wall, cpu, steps, steps, ran_names, ())

    def close(self) -> None:
        if self.root is not None:
            if (self.root / "storage").exists():
                runner.run(self.argv("rm", "--all"), self.env(), timeout=120)
            runner.remove_tree(self.root)
            self.root = None
