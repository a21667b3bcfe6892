"""Building on a real BuildKit daemon as a builder node: its own dockerfile.v0 frontend reads
the context (.dockerignore applied), the Dockerfile, build args and a secret over the
session; the OCI result comes back into this machine's store, and a builder that mixes this
machine (linux/amd64) with the daemon (linux/arm64) makes one index that runs on both."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon
from tests.conftest import import_busybox, require_platforms, require_root, run_cli
from tests.registry.conftest import (  # noqa: F401 (fixtures)
    PASSWORD,
    USER,
    Registry,
    auth_registry,
    docker_config,
    registry,
    write_docker_config,
)

pytestmark = [pytest.mark.root, pytest.mark.integration]

DOCKERFILE = """FROM {base}
ARG GREETING
COPY . /ctx
RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -c1-64 > /secret-hash \\
 && uname -m > /arch && echo "$GREETING" > /greeting
"""


@pytest.fixture(scope="module")
def daemon_with_base(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BuildkitDaemon, str, Path]]:
    """A daemon that pulls from the test registry (plain HTTP), busybox pushed there, and a
    client data root that has busybox too (for builds on this machine)."""
    require_root()
    root = tmp_path_factory.mktemp("bk-client") / "root"
    base = f"{registry.host}/library/busybox:latest"
    import_busybox(root, ("amd64", "arm64"), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    yield daemon, base, root


def last_layer_files(oci: Path, platform: str | None = None) -> dict[str, bytes]:
    with tarfile.open(oci) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile("blobs/" + digest.replace(":", "/"))
            assert member is not None
            return member.read()

        top = json.loads(blob(json.loads(blob_index(tar))["manifests"][0]["digest"]))
        if "manifests" in top:
            top = json.loads(
                blob(next(m["digest"] for m in top["manifests"] if plat(m) == platform))
            )
        layer = top["layers"][-1]["digest"]
        with tarfile.open(fileobj=io.BytesIO(blob(layer))) as inner:
            return {
                m.name: inner.extractfile(m).read()  # type: ignore[union-attr]
                for m in inner.getmembers()
                if m.isfile()
            }


def blob_index(tar: tarfile.TarFile) -> bytes:
    member = tar.extractfile("index.json")
    assert member is not None
    return member.read()


def plat(entry: dict[str, dict[str, str]]) -> str:
    p = entry.get("platform", {})
    return "/".join(x for x in (p.get("os"), p.get("architecture"), p.get("variant")) if x)


def test_a_build_on_a_daemon_gets_context_args_and_secret(
    daemon_with_base: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    daemon, base, root = daemon_with_base
    created = run_cli(root, "create", "--name", "bkonly", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (ctx / "sub" / "kept.txt").write_text("kept\n")
    (ctx / "ignored.log").write_text("no\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    (tmp_path / "token").write_text("s3cret")
    out = tmp_path / "out.tar"
    done = run_cli(root, "build", "--builder", "bkonly", "--platform", "linux/amd64",
                   "--build-arg", "GREETING=hello", "--progress", "plain",
                   "--secret", f"id=token,src={tmp_path / 'token'}",
                   "-o", f"type=oci,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the daemon's steps named as buildx shows a one-node build's: no node, no platform
    # (stage-0: the RUN --mount gives BuildKit's frontend a second state)
    step = r"^#\d+ \[stage-0 2/3\] COPY \. /ctx$"
    assert re.search(step, done.stderr, re.MULTILINE), done.stderr
    assert not re.search(r"^#\d+ .*bkonly0", done.stderr, re.MULTILINE), done.stderr
    files = last_layer_files(out)
    assert files["arch"] == b"x86_64\n"
    assert files["greeting"] == b"hello\n"
    assert files["secret-hash"].decode().strip() == hashlib.sha256(b"s3cret").hexdigest()
    copied = run_cli(root, "build", "--builder", "bkonly", "--platform", "linux/amd64",
                     "--build-arg", "GREETING=hello",
                     "--secret", f"id=token,src={tmp_path / 'token'}",
                     "-o", f"type=local,dest={tmp_path / 'fs'}", str(ctx))  # fmt: skip
    assert copied.returncode == 0, copied.stderr
    assert (tmp_path / "fs" / "ctx" / "sub" / "kept.txt").read_text() == "kept\n"
    assert not (tmp_path / "fs" / "ctx" / "ignored.log").exists()  # .dockerignore applied


def test_a_mixed_builder_makes_one_index(
    daemon_with_base: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    require_platforms("linux/arm64")
    daemon, base, root = daemon_with_base
    assert run_cli(root, "create", "--name", "mix", "--platform", "linux/amd64").returncode == 0
    node = ("--node", "bk", "--driver", "remote", "--platform", "linux/arm64", daemon.address)
    appended = run_cli(root, "create", "--append", "--name", "mix", *node)
    assert appended.returncode == 0, appended.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN uname -m > /arch\n")
    out = tmp_path / "mixed.tar"
    done = run_cli(root, "build", "--builder", "mix", "--platform", "linux/amd64,linux/arm64",
                   "--progress", "plain", "-o", f"type=oci,dest={out}", "-t", "mixed:1",
                   "--load", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    # each node names its steps as buildx's nodes of one build do (multi-platform: the
    # platform first, no node): amd64 on this machine, arm64 by the daemon
    for platform in ("linux/amd64", "linux/arm64"):
        for step in (f"[{platform} internal] load metadata for {base}",
                     f"[{platform} 2/2] RUN uname -m > /arch"):  # fmt: skip
            assert re.search(f"^#\\d+ {re.escape(step)}$", done.stderr, re.MULTILINE), step
        assert re.search(f"^#\\d+ \\[{platform} 1/2\\] FROM {re.escape(base)}@sha256:",
                         done.stderr, re.MULTILINE), done.stderr  # fmt: skip
    assert not re.search(r"^#\d+ \[(mix0|bk)[ \]]", done.stderr, re.MULTILINE), done.stderr
    assert last_layer_files(out, "linux/amd64") == {"arch": b"x86_64\n"}
    assert last_layer_files(out, "linux/arm64") == {"arch": b"aarch64\n"}
    ran = run_cli(root, "run", "--platform", "linux/arm64", "mixed:1", "cat", "/arch")
    assert (ran.returncode, ran.stdout) == (0, "aarch64\n"), ran.stderr


def test_a_step_failing_on_the_daemon_fails_the_build_with_buildkits_words(
    daemon_with_base: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    daemon, base, root = daemon_with_base
    run_cli(root, "create", "--name", "bkfail", "--driver", "remote", daemon.address)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo doomed; exit 3\n")
    out = tmp_path / "out.tar"
    done = run_cli(root, "build", "--builder", "bkfail", "--platform", "linux/amd64",
                   "-o", f"type=oci,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert not out.exists()
    assert '#5 ERROR: process "/bin/sh -c echo doomed; exit 3" did not complete' in done.stderr
    assert (
        'ERROR: failed to build: failed to solve: process "/bin/sh -c echo doomed; exit 3" did '
        f"not complete successfully: exit code: 3\nhint: the build ran on BuildKit node bkfail0 "
        f"({daemon.address})\n"
    ) in done.stderr, done.stderr
    assert "doomed" in done.stderr  # the step's output, shown as it ran


MARK = "pbt-bk-cancel-me-" + os.urandom(4).hex()


def step_running() -> bool:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True)
    return any(MARK in line and not line.startswith("ps ") for line in listing.stdout.splitlines())


def start_long_build(root: Path, builder: str, ctx: Path, out: Path) -> subprocess.Popen[str]:
    output = f"type=oci,dest={out}"
    argv = [sys.executable, "-m", "polybuild", "build", "--builder", builder, "--platform",
            "linux/amd64", "--progress", "plain", "-o", output, str(ctx)]  # fmt: skip
    build = subprocess.Popen(
        argv, env={**os.environ, "POLYBUILD_ROOT": str(root)}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert build.stderr is not None
    seen = []
    for line in build.stderr:
        seen.append(line)
        if "started" in line and "echo" not in line:
            return build
    build.kill()
    pytest.fail("the step never started:\n" + "".join(seen))


@pytest.mark.parametrize("how", ["ctrl-c", "daemon killed"])
def test_a_build_on_a_daemon_stops_at_ctrl_c_or_when_the_daemon_dies(
    how: str,
    buildkitd_factory: Callable[..., BuildkitDaemon],
    daemon_with_base: tuple[BuildkitDaemon, str, Path],
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    _, base, root = daemon_with_base
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')  # its own
    builder = "bkstop" + str(len(how))
    assert run_cli(root, "create", "--name", builder, "--driver", "remote",
                   daemon.address).returncode == 0  # fmt: skip
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo started; sleep 120; echo {MARK}\n")
    out = tmp_path / "out.tar"
    build = start_long_build(root, builder, ctx, out)
    assert step_running()
    if how == "ctrl-c":
        os.killpg(build.pid, signal.SIGINT)
    else:
        daemon.process.kill()
    stopped = time.monotonic()
    try:
        rest = build.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        build.kill()
        pytest.fail(f"the build did not stop within 30 s ({how})")
    assert time.monotonic() - stopped < 30
    assert not out.exists()
    if how == "ctrl-c":
        assert build.returncode == 130, rest  # cancelled, as buildx exits
        deadline = time.monotonic() + 15
        while step_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not step_running(), "the daemon still runs the step after Ctrl-C"
    else:
        assert build.returncode == 1, rest
        assert f"node {builder}0 ({daemon.address})" in rest, rest
        # A killed daemon leaves its step running (BuildKit's containers outlive it): end it,
        # then unmount what the daemon left.
        subprocess.run(["pkill", "-KILL", "-f", MARK], check=False)
        deadline = time.monotonic() + 10
        while step_running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not step_running()
        daemon.stop()


def test_the_daemon_logs_in_with_the_users_credentials(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    auth_registry: Registry,  # noqa: F811
    docker_config: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A base image behind a login: the daemon asks the session for the host's credentials
    (Docker's config.json here), and without them the build fails."""
    root = tmp_path / "root"
    base = f"{auth_registry.host}/private/busybox:1"
    import_busybox(root, ("amd64",), name=base)
    write_docker_config(docker_config, {"auths": {auth_registry.host: {"auth": base64.b64encode(
        f"{USER}:{PASSWORD}".encode()).decode()}}})  # fmt: skip
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{auth_registry.host}"]\n  http = true\n')
    assert run_cli(root, "create", "--name", "bkauth", "--driver", "remote",
                   daemon.address).returncode == 0  # fmt: skip
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN uname -m > /arch\n")
    args = ("build", "--builder", "bkauth", "--platform", "linux/amd64", str(ctx))
    logged_in = run_cli(root, *args, "-o", f"type=oci,dest={tmp_path / 'ok.tar'}")
    assert logged_in.returncode == 0, logged_in.stderr
    write_docker_config(docker_config, {})
    anonymous = run_cli(root, *args, "--no-cache", "--pull")
    assert anonymous.returncode == 1, anonymous.stderr
    assert "401" in anonymous.stderr or "unauthorized" in anonymous.stderr.lower(), anonymous.stderr


def test_with_source_date_epoch_the_daemons_layers_are_clamped_as_ours(
    daemon_with_base: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    daemon, base, root = daemon_with_base
    run_cli(root, "create", "--name", "bkepoch", "--driver", "remote", daemon.address)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY hello.txt /\n")
    (ctx / "hello.txt").write_text("hi\n")  # modified now, after the epoch
    epoch = {"SOURCE_DATE_EPOCH": "1700000000"}
    out = tmp_path / "bk.tar"
    done = run_cli(root, "build", "--builder", "bkepoch", "--platform", "linux/amd64",
                   "-o", f"type=oci,dest={out}", str(ctx), env=epoch)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        manifest_digest = json.loads(blob_index(tar))["manifests"][0]["digest"]
        manifest = json.loads(tar.extractfile("blobs/" + manifest_digest.replace(":", "/")).read())  # type: ignore[union-attr]
        layer = tar.extractfile("blobs/" + manifest["layers"][-1]["digest"].replace(":", "/"))
        assert layer is not None
        with tarfile.open(fileobj=io.BytesIO(layer.read())) as inner:
            assert inner.getmember("hello.txt").mtime == 1700000000
