"""The peers the benchmarks compare polybuild with, and what they pull from: a loopback
Debian docker-registry holding busybox for the three platforms, a private buildkitd v0.32.2
driven by its buildctl, and buildah (optional).

The registry and the daemon are the tests' own (tests/registry/conftest.py's `run_registry`,
tests/buildkit/conftest.py's `BuildkitDaemons`: runc, overlayfs, a private root); their helpers
fail with `pytest.fail`, so a benchmark's main catches `pytest.fail.Exception`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import pytest  # noqa: E402 (the daemon and registry helpers fail with pytest.fail)
from benchmarks import nodes, runner  # noqa: E402

from tests.buildkit.conftest import RUNC, BuildkitDaemon, BuildkitDaemons  # noqa: E402
from tests.conftest import SHARED  # noqa: E402
from tests.registry.conftest import Registry, run_registry  # noqa: E402

BUILDKIT = SHARED / "tools" / "buildkit"
BUILDCTL = BUILDKIT / "buildctl"

__all__ = [
    "BUILDCTL",
    "BUILDKIT",
    "RUNC",
    "BuildkitDaemon",
    "buildctl",
    "buildctl_build",
    "buildkit_missing",
    "buildkitd_binary",
    "daemon_cpu",
    "daemon_version",
    "oci_platforms",
    "push_busybox",
    "run_in_scratch",
    "start_buildkitd",
    "start_registry",
]


def buildkitd_binary() -> Path:
    """$POLYBUILD_TEST_BUILDKITD, else ../shared/tools/buildkit/buildkitd (as the tests)."""
    configured = os.environ.get("POLYBUILD_TEST_BUILDKITD")
    return Path(configured) if configured else BUILDKIT / "buildkitd"


def buildkit_missing() -> str:
    """Why a BuildKit daemon cannot run here ('' when it can)."""
    for needed in (buildkitd_binary(), BUILDCTL, RUNC):
        if not needed.exists():
            return f"{needed} is missing (see ../shared/tools/buildkit/README.md)"
    return ""


def start_registry(stack: ExitStack, work: Path) -> Registry:
    """A docker-registry on a free loopback port, stopped when `stack` closes."""
    return stack.enter_context(run_registry(work / "registry"))


def push_busybox(
    polybuild: runner.Polybuild,
    tarballs: dict[str, Path],
    base: str,
    work: Path,
    arches: Sequence[tuple[str, str, str, str]] = runner.BASE_ARCHES,
) -> None:
    """Push busybox for the platforms of `arches` (default the three; Debian's busybox-static,
    imported by polybuild in a throwaway data root) to `base`, an index on the registry."""
    seeder = work / "busybox-seed-root"
    seeder.mkdir()
    try:
        for debian_arch, _, _, platform in arches:
            runner.checked(
                [polybuild.executable, "import", "--platform", platform,
                 tarballs[debian_arch], base],
                polybuild.env(seeder),
            )  # fmt: skip
        runner.checked([polybuild.executable, "push", base], polybuild.env(seeder))
    finally:
        runner.remove_tree(seeder)


def start_buildkitd(stack: ExitStack, work: Path, registry_host: str) -> BuildkitDaemon:
    """A private buildkitd (the README's worker set-up) pulling over plain HTTP from the
    registry; stopped, and its mounts unmounted, when `stack` closes."""
    daemons = BuildkitDaemons(work / "buildkitd", buildkitd_binary())
    stack.callback(daemons.stop_all)
    return daemons.start(f'[registry."{registry_host}"]\n  http = true\n')


def buildctl(daemon: BuildkitDaemon, *args: str | Path) -> list[str | Path]:
    return [BUILDCTL, "--addr", daemon.address, *args]


def buildctl_build(
    daemon: BuildkitDaemon,
    context: Path,
    dockerfile_dir: Path,
    output: str,
    *extra: str,
    platforms: tuple[str, ...] = runner.PLATFORMS,
) -> list[str | Path]:
    """`buildctl build` with the dockerfile.v0 frontend, `--progress=rawjson`."""
    return buildctl(
        daemon, "build", "--frontend", "dockerfile.v0",
        "--local", f"context={context}", "--local", f"dockerfile={dockerfile_dir}",
        "--opt", f"platform={','.join(platforms)}", "--output", output,
        *extra, "--progress=rawjson",
    )  # fmt: skip


def daemon_cpu(daemon: BuildkitDaemon | None) -> float:
    """CPU seconds of the daemon, its waited-for children and its live descendants."""
    return 0.0 if daemon is None else runner.process_tree_cpu(daemon.process.pid)


def daemon_version(daemon: BuildkitDaemon) -> str:
    return " ".join(runner.checked(buildctl(daemon, "debug", "info")).split())


def oci_platforms(tarball: Path) -> list[str]:
    """The platforms of the one image in an OCI layout tarball, sorted: an index's manifests
    (attestations, platform unknown/unknown, left out), or a single manifest's config."""
    with tarfile.open(tarball) as tar:

        def blob(digest: object) -> dict[str, Any]:
            name = "blobs/" + str(digest).replace(":", "/") if digest else "index.json"
            member = tar.extractfile(name)
            if member is None:
                raise runner.MeasurementError(f"{tarball}: no {name}")
            loaded: dict[str, Any] = json.load(member)
            return loaded

        def name(p: dict[str, str]) -> str:
            return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)

        (top,) = blob(None)["manifests"]
        image = blob(top["digest"])
        if "manifests" not in image:
            return [name(blob(image["config"]["digest"]))]
        return sorted(
            name(m.get("platform", {}))
            for m in image["manifests"]
            if m.get("platform", {}).get("os") != "unknown"
        )


# --- buildah (optional) ---------------------------------------------------------------------

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


def find_buildah(install: bool) -> tuple[str | None, str]:
    """(path, note): buildah's path and version, or None and why it is skipped."""
    path = shutil.which("buildah")
    if path is None and install:
        print("== installing buildah with apt (--install-peers)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _, proc = runner.run(["apt-get", "install", "-y", "-q", "buildah"], env, timeout=900)
        if proc.returncode != 0:
            return None, f"apt-get install buildah failed: {runner.tail(proc)}"
        path = shutil.which("buildah")
    if path is None:
        return None, "buildah is not installed (pass --install-peers to install it with apt)"
    _, proc = runner.run([path, "--version"], timeout=60)
    return path, proc.stdout.strip()


def run_in_scratch(prefix: str, body: Callable[[Path], int], stopped: str) -> int:
    """A benchmark's `main`: `body` in a fresh work directory, removed afterwards (mounts
    left under it reported); a failed measurement exits 1 and Ctrl-C or SIGTERM 130, after
    saying what was stopped (`stopped`: "daemon and registry")."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        with nodes.interruptible():
            return body(work)
    except (runner.MeasurementError, nodes.MeasurementError) as exc:
        print(f"FAILED: {exc}")
        return 1
    except pytest.fail.Exception as exc:
        print(f"FAILED: {exc.msg}")
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {stopped} stopped")
        return 130
    finally:
        leaked = runner.remove_tree(work)
        if leaked:
            print(f"WARNING: mounts left under {work} (unmounted): {', '.join(leaked)}")
