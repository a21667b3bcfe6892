"""A base image pulled for FROM shows BuildKit's lines under the `[1/2] FROM REF@sha256:...`
step: `resolve REF@sha256:... done`, then one line per layer blob fetched (`sha256:... SIZE /
SIZE [Ts ]done`), compared with buildctl's on a real buildkitd pulling the same image from the
test registry; a token fetched with the user's credentials is BuildKit's `[auth] REPO:pull
token for HOST` step. Sizes are printed as BuildKit's units package prints them."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from polybuild.imagebuild.pull_steps import PullSteps, auth_step_name, pull_key
from polybuild.platforms import parse
from polybuild.progress.events import VertexCompleted, VertexStarted, VertexStatus
from polybuild.progress.plain import format_bytes
from polybuild.progress.writer import ProgressWriter, Recorder
from polybuild.registry.pull_progress import BlobFetched, TokenFetched, observing, report_blob
from tests.buildkit.conftest import BuildkitDaemon, buildkitd_factory  # noqa: F401 (fixture)
from tests.conftest import SHARED, import_busybox, require, require_root, run_cli
from tests.registry.conftest import (  # noqa: F401 (fixture)
    PASSWORD,
    USER,
    Registry,
    registry,
    token_proxy,
)
from tests.registry.proxy import Proxy

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"
HEADER = re.compile(r"^#(\d+) (.*)$", re.MULTILINE)
SECONDS = re.compile(r" \d+\.\d+s done$")
AMD64 = parse("linux/amd64")


def step_lines(plain: str, prefix: str) -> list[str]:
    """The lines of the step whose name starts with `prefix`, times dropped (`0.0s done`
    and `done` are one: BuildKit leaves out a time under 0.01 s), DONE/CACHED left out."""
    numbers = {m.group(1) for m in HEADER.finditer(plain) if m.group(2).startswith(prefix)}
    assert len(numbers) == 1, plain
    (number,) = numbers
    lines = [m.group(2) for m in HEADER.finditer(plain) if m.group(1) == number]
    return [SECONDS.sub(" done", line) for line in lines[1:] if not line.startswith("DONE")]


# ---- without a registry ----------------------------------------------------------------


def test_sizes_are_buildkits_decimal_units() -> None:
    assert [format_bytes(n) for n in (0, 999, 1000, 1536, 1_144_000, 3 << 20, 10**12)] == [
        "0B", "999B", "1.00kB", "1.54kB", "1.14MB", "3.15MB", "1.00TB",
    ]  # fmt: skip


def test_blob_lines_wait_for_their_from_step_and_auth_steps_show_once() -> None:
    recorder = Recorder()
    progress = ProgressWriter(recorder, clock=lambda: 50.0)
    steps = PullSteps(progress)
    token = TokenFetched("reg.test", ("repository:library/busybox:pull",), 1.0, 1.5)
    with observing(steps.for_pull("reg.test/library/busybox", AMD64)):
        report_blob(BlobFetched("sha256:aa", 2_150_000, 2.0, 2.2))
        steps.token(token)
        steps.token(token)  # BuildKit names a token once
    report_blob(BlobFetched("sha256:bb", 1, 3.0, 3.1))  # no observer here: not reported
    assert recorder.events == [
        VertexStarted("auth:" + auth_step_name(token), auth_step_name(token), 1.0),
        VertexCompleted("auth:" + auth_step_name(token), 1.5),
    ]
    assert auth_step_name(token) == "[auth] library/busybox:pull token for reg.test"
    with progress.vertex("sha256:from", "[1/2] FROM reg.test/library/busybox") as handle:
        progress.release(pull_key("reg.test/library/busybox", AMD64), handle)
        progress.release(pull_key("reg.test/library/busybox", AMD64), handle)  # once
    statuses = [e for e in recorder.events if isinstance(e, VertexStatus)]
    assert statuses == [
        VertexStatus("sha256:from", "sha256:aa", 2.2, 2_150_000, 2_150_000, "", 2.0, 2.2)
    ]


# ---- against BuildKit ----------------------------------------------------------------------


def pushed_busybox(seed: Path, host: str, tag: str) -> str:
    base = f"{host}/library/busybox:{tag}"
    import_busybox(seed, ("amd64", "arm64"), name=base)
    pushed = run_cli(seed, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    return base


@pytest.mark.root
@pytest.mark.integration
def test_a_pulled_bases_from_step_shows_buildkits_lines(
    buildkitd_factory: Callable[..., BuildkitDaemon],  # noqa: F811
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    require(BUILDCTL.is_file(), f"buildctl is not at {BUILDCTL}")
    base = pushed_busybox(tmp_path / "seed", registry.host, "pulled")
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')  # empty
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo hi\n")
    theirs = subprocess.run(
        [str(BUILDCTL), "--addr", daemon.address, "build", "--progress", "plain",
         "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
         "--local", f"dockerfile={ctx}", "--opt", "platform=linux/amd64"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    fresh = tmp_path / "fresh"  # a data root without the base: it is pulled
    ours = run_cli(fresh, "build", "--platform", "linux/amd64", "--progress", "plain", str(ctx))
    assert ours.returncode == 0, ours.stderr
    buildkit = step_lines(theirs.stderr, "[1/2] FROM")
    # polybuild unpacks a base's layers when a step first needs them, not in its FROM step
    expected = [line for line in buildkit if not line.startswith("extracting ")]
    assert any(re.fullmatch(r"sha256:[0-9a-f]{64} 1\.\d\dMB / 1\.\d\dMB done", x) for x in expected)
    assert step_lines(ours.stderr, "[1/2] FROM") == expected, ours.stderr
    again = run_cli(fresh, "build", "--platform", "linux/amd64", "--progress", "plain", str(ctx))
    assert step_lines(again.stderr, "[1/2] FROM") == expected[:1]  # stored: nothing fetched


@pytest.mark.root
@pytest.mark.integration
def test_a_token_fetched_with_credentials_is_an_auth_step(
    token_proxy: Proxy,  # noqa: F811
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    pushed_busybox(tmp_path / "seed", registry.host, "authed")  # behind the proxy too
    config = tmp_path / "docker-config"
    config.mkdir()
    secret = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    (config / "config.json").write_text(json.dumps({"auths": {token_proxy.host: {"auth": secret}}}))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {token_proxy.host}/library/busybox:authed\n")
    done = run_cli(tmp_path / "fresh", "build", "--platform", "linux/amd64",
                   "--progress", "plain", str(ctx), env={"DOCKER_CONFIG": str(config)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    name = f"[auth] library/busybox:pull token for {token_proxy.host}"
    assert re.search(rf"^#(\d+) {re.escape(name)}\n#\1 DONE \d+\.\ds$", done.stderr, re.M), (
        done.stderr
    )
    assert done.stderr.count(name) == 1, done.stderr
