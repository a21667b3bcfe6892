"""The commands the reliability trials kill, and the data they need: a busybox base (amd64 and
arm64), a `big` image with a few MiB per platform, its OCI tarball, contexts to build, and the
same images in a registry."""

from __future__ import annotations

import hashlib
import random
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from polybuild.image.store import ImageStore
from tests.conftest import import_busybox
from tests.reliability.harness import Lab, Scenario, Trial, kill_at, verify

PLATFORMS = "linux/amd64,linux/arm64"
ARCHES = ("amd64", "arm64")
# Tiny steps: arm64 runs under QEMU, about ten times slower than natively.
BUILD_DOCKERFILE = """\
FROM busybox
ARG N=0
RUN echo "trial $N" > /trial && cp -a /bin /bin.copy
COPY file /file
COPY <<EOF /note
from a heredoc
EOF
RUN cat /trial /file /note > /both
"""
CONTEXT_FILE = "a file from the context\n"
OTHER_DOCKERFILE = """\
FROM busybox
ARG N=0
RUN echo "other $N" > /other
COPY . /ctx
"""
BIG_BYTES = 3 << 20  # per platform: a pull, push or load has a while to be killed in


@dataclass(frozen=True)
class World:
    """What every lab starts from (the template data root) and the inputs of the commands."""

    base: Path
    template: Path
    app_context: Path
    other_context: Path
    big_rootfs: Path
    big_archive: Path
    registry: str | None

    def lab(self, name: str, *, empty: bool = False) -> Lab:
        """A fresh lab: a copy of the template data root (or an empty one)."""
        work = self.base / "labs" / name
        work.mkdir(parents=True)
        root = work / "root"
        if not empty:
            # cp -a: unpacked layers hold whiteout devices and xattrs
            subprocess.run(["cp", "-a", str(self.template), str(root)], check=True)
        return Lab(root, work)


def _big_rootfs(arch: str, path: Path, seed: int) -> Path:
    """busybox's root filesystem plus a file of random bytes (it does not compress)."""
    from polybuild.testing.busybox import make_rootfs_tar

    make_rootfs_tar(arch, path)
    with tarfile.open(path, "a") as tar, tempfile.TemporaryFile() as blob:
        blob.write(random.Random(seed).randbytes(BIG_BYTES))
        blob.seek(0)
        info = tarfile.TarInfo("big/random")
        info.size = BIG_BYTES
        tar.addfile(info, blob)
    return path


def make_world(base: Path, registry: str | None) -> World:
    """Build the template data root (busybox, big) and push both to `registry`."""
    template = base / "template"
    import_busybox(template, ARCHES)
    lab = Lab(template, base / "template-work")
    lab.work.mkdir(parents=True, exist_ok=True)
    rootfs = {}
    for seed, arch in enumerate(ARCHES):
        rootfs[arch] = _big_rootfs(arch, base / f"big-{arch}.tar", seed)
        lab.ok("import", "--platform", f"linux/{arch}", str(rootfs[arch]), "big")
    archive = base / "big.tar"
    lab.ok("save", "-o", str(archive), "big")
    if registry is not None:
        lab.ok("push", "big", "--to", f"{registry}/rel/big:latest")
        lab.ok("push", "busybox", "--to", f"{registry}/rel/busybox:latest")
    app = base / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(BUILD_DOCKERFILE)
    (app / "file").write_text(CONTEXT_FILE)
    other = base / "other"
    other.mkdir()
    (other / "Dockerfile").write_text(OTHER_DOCKERFILE)
    for i in range(20):
        (other / f"f{i}").write_text(f"file {i}\n" * 100)
    # Warm: busybox unpacked for both platforms in the template, so that the first (timed)
    # build of a lab is as long as the ones that are killed.
    lab.ok(*build_argv(app, -1, ()))
    return World(base, template, app, other, rootfs["arm64"], archive, registry)


def build_argv(context: Path, n: int, output: tuple[str, ...]) -> list[str]:
    return ["build", "--platform", PLATFORMS, "--build-arg", f"N={n}", *output, str(context)]


def app_files(lab: Lab, n: int) -> list[str]:
    """`app` holds what trial n's build writes (read by running it, natively)."""
    proc = lab.run("run", "--rm", "--platform", "linux/amd64", "app", "cat", "/both")
    want = f"trial {n}\n{CONTEXT_FILE}from a heredoc\n"
    if proc.returncode != 0 or proc.stdout != want:
        return [f"image app has wrong files: /both is {proc.stdout!r} ({proc.stderr[-300:]})"]
    return []


def oci_archive(lab: Lab, n: int) -> list[str]:
    """The OCI tarball is whole: index.json present, every blob's bytes match its name."""
    path = lab.work / "app.tar"
    try:
        with tarfile.open(path) as tar:
            names = tar.getnames()
            for member in tar.getmembers():
                if member.isfile() and member.name.startswith("blobs/sha256/"):
                    data = tar.extractfile(member)
                    assert data is not None
                    if hashlib.sha256(data.read()).hexdigest() != member.name.rsplit("/")[-1]:
                        return [f"{path}: blob {member.name} is corrupt"]
    except (OSError, tarfile.TarError) as exc:
        return [f"{path} is not a whole tarball: {exc}"]
    return [] if "index.json" in names else [f"{path} has no index.json"]


def scenarios(world: World) -> dict[str, tuple[Scenario, bool]]:
    """Each scenario by name, with whether its lab starts empty (pull) or from the template."""

    def build_load(lab: Lab, n: int) -> list[str]:
        return build_argv(world.app_context, n, ("-t", "app", "--load"))

    def build_oci(lab: Lab, n: int) -> list[str]:
        return build_argv(world.app_context, n, ("-o", f"type=oci,dest={lab.work / 'app.tar'}"))

    def rmi_if_present(lab: Lab, name: str) -> None:
        names = {r.name.familiar() for r in ImageStore(lab.root).records() if r.name}
        if name in names:
            lab.ok("rmi", name)

    def registry_ref(name: str) -> str:
        assert world.registry is not None, "this scenario needs a registry"
        return f"{world.registry}/rel/{name}"

    def prune_prepare(lab: Lab, n: int) -> None:
        lab.ok(*build_load(lab, n))
        lab.ok("rmi", "app")  # its layers and cache are what prune removes

    return {
        "build --load": (Scenario("build --load", build_load, check_result=app_files), False),
        "build -o type=oci": (
            Scenario("build -o type=oci", build_oci, check_result=oci_archive),
            False,
        ),
        "pull": (
            Scenario(
                "pull",
                lambda lab, n: ["pull", "--all-platforms", registry_ref("big:latest")],
                prepare=lambda lab, n: rmi_if_present(lab, registry_ref("big:latest")),
            ),
            True,
        ),
        "push": (
            Scenario(
                "push", lambda lab, n: ["push", "big", "--to", registry_ref(f"push{n}:latest")]
            ),
            False,
        ),
        "load": (
            Scenario(
                "load",
                lambda lab, n: ["load", "-i", str(world.big_archive)],
                prepare=lambda lab, n: rmi_if_present(lab, "big:latest"),
            ),
            False,
        ),
        "import": (
            Scenario(
                "import",
                lambda lab, n: [
                    "import",
                    "--platform",
                    "linux/arm64",
                    str(world.big_rootfs),
                    f"imp{n % 2}",
                ],
            ),
            False,
        ),
        "prune": (
            Scenario(
                "prune",
                lambda lab, n: ["prune", "--force", "--all"],
                prepare=prune_prepare,
                # What follows a prune is a build: it must not pick up half-removed state.
                next_command=build_load,
                check_result=app_files,
            ),
            False,
        ),
    }


def concurrent_trial(
    lab: Lab, world: World, number: int, rng: random.Random, duration: float
) -> Trial:
    """Two builds of different projects on one data root; one is killed at a random moment.
    The other must succeed; then the killed one is run again."""
    argvs = {
        "app": build_argv(world.app_context, number, ("-t", "app", "--load")),
        "other": build_argv(world.other_context, number, ("-t", "other", "--load")),
    }
    victim = rng.choice(sorted(argvs))
    procs = {name: lab.start(argv) for name, argv in argvs.items()}
    delay = rng.uniform(0.0, duration)
    killed = kill_at(procs[victim], delay)
    problems = []
    for name, proc in procs.items():
        if name == victim:
            continue
        _, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            tail = " | ".join(err.decode().strip().splitlines()[-3:])
            problems.append(f"concurrent build of {name} failed: {tail}")
    proc = lab.run(*argvs[victim])
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        problems.append(f"next command (build of {victim}) failed: {tail}")
    problems += verify(lab)
    return Trial("concurrent builds", number, delay, killed, tuple(problems))


def timed_concurrent(lab: Lab, world: World) -> float:
    """The duration of the pair of builds (as `timed`)."""
    started = time.monotonic()
    procs = [
        lab.start(build_argv(world.app_context, 0, ("-t", "app", "--load"))),
        lab.start(build_argv(world.other_context, 0, ("-t", "other", "--load"))),
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-2000:]
    return time.monotonic() - started
