"""polybuild's `--progress=plain` against BuildKit's own (`buildctl build --progress=plain` on a
real buildkitd v0.32.2) for the same Dockerfiles: the steps' names (digests included), their
order, their log lines and a failed step's report, with times normalised.

BuildKit runs its internal steps concurrently (their order varies from run to run), so those
are compared as a set; the Dockerfile's steps in order. buildctl prints `error: failed to
solve: ...` where buildx, whose output polybuild follows, prints `ERROR: failed to build:
failed to solve: ...`.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon
from tests.conftest import SHARED, import_busybox, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"
HEADER = re.compile(r"^#(\d+) (.*)$")
TIME = re.compile(r"^\d+\.\d+ ", re.MULTILINE)


@pytest.fixture(scope="module")
def node(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BuildkitDaemon, str, Path]]:
    """A daemon pulling busybox (amd64, arm64) from the test registry; a data root with the
    same image under the same name, for polybuild's local builds."""
    require_root()
    root = tmp_path_factory.mktemp("plain-vs") / "root"
    base = f"{registry.host}/library/busybox:plain"
    import_busybox(root, ("amd64", "arm64"), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    yield daemon, base, root


@dataclass(frozen=True)
class Plain:
    """One plain output taken apart: steps in order of appearance, each step's log lines
    (times dropped), the failed steps' report (from the first `------`), and the rest."""

    steps: list[str]
    logs: dict[str, list[str]]
    report: str

    @property
    def internal(self) -> set[str]:
        return {s for s in self.steps if "internal]" in s}

    @property
    def dockerfile_steps(self) -> list[str]:
        return [s for s in self.steps if "internal]" not in s]


def parse(text: str) -> Plain:
    head, sep, report = text.partition("------\n")
    names: dict[str, str] = {}
    logs: dict[str, list[str]] = {}
    for line in head.splitlines():
        found = HEADER.match(line)
        if found is None:
            continue
        number, rest = found.groups()
        if number == "0":
            continue
        if number not in names:
            names[number] = rest
            logs[rest] = []
        elif TIME.match(rest):
            logs[names[number]].append(TIME.sub("", rest))
    return Plain(list(names.values()), logs, TIME.sub("T ", sep + report))


def context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "f.txt").write_text("x\n")
    return ctx


def both(
    node: tuple[BuildkitDaemon, str, Path],
    tmp_path: Path,
    dockerfile: str,
    *platforms: str,
    output: str = "",
    build_args: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], subprocess.CompletedProcess[str]]:
    """(buildctl's run, polybuild's run) of `dockerfile` (`{base}` is the busybox image),
    `output` (`-o`, `DEST` replaced by a file of each's own) the outputs of both, with
    `build_args` (NAME=VALUE)."""
    daemon, base, root = node
    ctx = context(tmp_path, dockerfile.format(base=base))
    args = [str(BUILDCTL), "--addr", daemon.address, "build", "--progress", "plain",
            "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
            "--local", f"dockerfile={ctx}",
            # what buildx adds by default, and polybuild too: so both attest alike
            "--opt", "attest:provenance=mode=min,inline-only=true"]  # fmt: skip
    flags: list[str] = []
    if platforms:
        args += ["--opt", f"platform={','.join(platforms)}"]
        flags = ["--platform", ",".join(platforms)]
    for arg in build_args:
        args += ["--opt", f"build-arg:{arg}"]
        flags += ["--build-arg", arg]
    if output:
        args += ["--output", output.replace("DEST", str(tmp_path / "theirs"))]
        flags += ["--output", output.replace("DEST", str(tmp_path / "ours"))]
    theirs = subprocess.run(args, capture_output=True, text=True, check=False, timeout=300)
    ours = run_cli(root, "build", "--progress", "plain", *flags, str(ctx))
    return theirs, ours


def test_one_stage_steps_names_and_logs_are_buildkits(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    dockerfile = (
        "FROM {base}\nARG DEST=/srv\nENV GREETING=hello\nWORKDIR /app\n"
        'RUN echo "$GREETING from $DEST" && echo "${{UNSET:-}}x"\n'
        "COPY --chmod=644 f.txt $DEST/\n"
        # each step writes a file: two empty layers in one stack make overlayfs refuse it
        + "".join(f"RUN echo step {n} | tee /step{n}\n" for n in range(7))
    )
    theirs, ours = both(node, tmp_path, dockerfile)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    assert ours.stderr.startswith('#0 building with "default" instance using local driver\n\n')
    mine, buildkit = parse(ours.stderr), parse(theirs.stderr)
    assert mine.internal == buildkit.internal, ours.stderr
    assert mine.dockerfile_steps == buildkit.dockerfile_steps, ours.stderr
    assert (
        buildkit.dockerfile_steps[2] == '[ 3/11] RUN echo "hello from /srv" && echo "${UNSET:-}x"'
    )
    assert mine.logs == buildkit.logs


def test_a_failed_multi_stage_build_reports_as_buildkit(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    dockerfile = (
        "FROM {base} AS base\nARG X=hi\nRUN echo one\nWORKDIR /app\nCOPY . /src/$X\n"
        "FROM base\n"
        "RUN --network=none sh -c 'echo to stderr >&2; \\\n"
        '  echo "quoted" >&2; exit 3\'\n'
        "FROM scratch AS never\n"
    )
    theirs, ours = both(node, tmp_path, dockerfile.replace("FROM scratch AS never\n", ""))
    assert theirs.returncode == 1 and ours.returncode != 0, ours.stderr
    mine, buildkit = parse(ours.stderr), parse(theirs.stderr)
    assert mine.internal == buildkit.internal, ours.stderr
    assert mine.dockerfile_steps == buildkit.dockerfile_steps, ours.stderr
    assert mine.logs == buildkit.logs
    expected = buildkit.report.replace(
        "\nerror: failed to solve: ", "\nERROR: failed to build: failed to solve: "
    )
    assert mine.report == expected, ours.stderr
    assert "   7 | >>> RUN --network=none" in mine.report


def test_multi_platform_steps_are_named_as_buildkit(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    dockerfile = (
        "FROM --platform=$BUILDPLATFORM {base} AS build\nARG TARGETPLATFORM\n"
        "RUN echo building for $TARGETPLATFORM > /log\n"
        "FROM {base}\nCOPY --from=build /log /log\nRUN cat /log\n"
    )
    theirs, ours = both(node, tmp_path, dockerfile, "linux/amd64", "linux/arm64")
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    mine, buildkit = parse(ours.stderr), parse(theirs.stderr)
    assert mine.internal == buildkit.internal, ours.stderr
    assert sorted(mine.dockerfile_steps) == sorted(buildkit.dockerfile_steps), ours.stderr
    for platform in ("[linux/amd64 ", "[linux/arm64 "):
        order = [s for s in buildkit.dockerfile_steps if s.startswith(platform)]
        assert [s for s in mine.dockerfile_steps if s.startswith(platform)] == order
    assert "[linux/amd64->arm64 build 2/2] RUN echo building for linux/arm64 > /log" in mine.steps
    assert mine.logs == buildkit.logs


def test_a_one_stage_file_with_a_mount_is_stage_0_as_in_buildkit(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    # a RUN --mount (any type) gives the frontend a state that is no stage, so a one-stage
    # file's steps are named `stage-0`, as a daemon node names them
    dockerfile = (
        "FROM {base}\nRUN --mount=type=cache,target=/c echo cached > /c/x\nCOPY f.txt /f.txt\n"
    )
    theirs, ours = both(node, tmp_path, dockerfile)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    mine, buildkit = parse(ours.stderr), parse(theirs.stderr)
    assert mine.internal == buildkit.internal, ours.stderr
    assert mine.dockerfile_steps == buildkit.dockerfile_steps, ours.stderr
    assert "[stage-0 3/3] COPY f.txt /f.txt" in buildkit.dockerfile_steps


def test_one_platform_with_buildkit_multi_platform_is_named_with_it(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    # BUILDKIT_MULTI_PLATFORM=1: what buildx asks of every node of a build several nodes
    # share (the frontend's multi-platform), so their names do not depend on the node
    dockerfile = "FROM {base} AS base\nRUN echo one > /one\nFROM base\nCOPY f.txt /\n"
    multi = ("BUILDKIT_MULTI_PLATFORM=1",)
    theirs, ours = both(node, tmp_path, dockerfile, "linux/arm64", build_args=multi)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    mine, buildkit = parse(ours.stderr), parse(theirs.stderr)
    assert mine.internal == buildkit.internal, ours.stderr
    assert mine.dockerfile_steps == buildkit.dockerfile_steps, ours.stderr
    assert "[linux/arm64 base 2/2] RUN echo one > /one" in buildkit.dockerfile_steps
    assert f"[linux/arm64 internal] load metadata for {node[1]}" in buildkit.internal


def export_lines(text: str) -> list[str]:
    """The export step's title and finished lines, digests and times left out."""
    numbers = {m.group(1) for m in re.finditer(r"^#(\d+) exporting to ", text, re.MULTILINE)}
    lines = [line.split(" ", 1)[1] for line in text.splitlines()
             if line.split(" ", 1)[0].lstrip("#") in numbers]  # fmt: skip
    lines = [re.sub(r"sha256:[0-9a-f]{64}", "sha256:D", line) for line in lines]
    lines = [re.sub(r" \d+\.\ds", "", line) for line in lines]
    # a status BuildKit printed while it ran is printed again when done: the done line counts
    return [line for line in dict.fromkeys(lines) if line.startswith("exporting to ")
            or line.endswith(" done")]  # fmt: skip


@pytest.mark.parametrize(
    ("platforms", "output", "title"),
    [
        ((), "type=oci,dest=DEST", "exporting to oci image format"),
        (("linux/amd64", "linux/arm64"), "type=oci,dest=DEST", "exporting to oci image format"),
        (
            ("linux/amd64", "linux/arm64"),
            "type=image,name=example.com/plain:1",
            "exporting to image",
        ),
        ((), "type=image,name=REGISTRY/plain/push:1,push=true", "exporting to image"),
    ],
)
def test_the_export_step_is_buildkits(
    node: tuple[BuildkitDaemon, str, Path],
    tmp_path: Path,
    platforms: tuple[str, ...],
    output: str,
    title: str,
) -> None:
    dockerfile = "FROM {base}\nRUN echo hi > /hi\n"
    output = output.replace("REGISTRY", node[1].split("/", 1)[0])
    theirs, ours = both(node, tmp_path, dockerfile, *platforms, output=output)
    assert theirs.returncode == 0, theirs.stderr
    assert ours.returncode == 0, ours.stderr
    mine = export_lines(ours.stderr)
    if output.startswith("type=image"):
        # the name goes into this machine's image store too: BuildKit says `naming to` where
        # it has one (containerd's, Docker's), which buildkitd's OCI worker here has not
        name = output.split("name=", 1)[1].split(",", 1)[0]
        assert f"naming to {name} done" in mine, ours.stderr
        mine.remove(f"naming to {name} done")
    assert mine == export_lines(theirs.stderr), ours.stderr
    assert mine[0] == title
