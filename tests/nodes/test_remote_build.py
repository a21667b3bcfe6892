"""`polybuild build` on a builder whose node is a test host over ssh: the platform is built
on the node, the image comes back into this machine's store and outputs; a warm rebuild
sends no context file and runs no step; a node that dies mid-build fails the build naming
it, within 30 s, with no output written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from tests.conftest import import_busybox
from tests.nodes.hosts import SshHost, SshHosts
from tests.nodes.test_remote_bootstrap import wait_for_no_dial_stdio

pytestmark = [pytest.mark.root, pytest.mark.integration]

DOCKERFILE = "FROM busybox\nCOPY hello.txt /\nRUN uname -m > /arch\n"


class Client:
    """`polybuild` here, with its own data root and the test hosts' ssh config."""

    def __init__(self, host: SshHost, root: Path) -> None:
        self.env = {**host.env, "POLYBUILD_ROOT": str(root)}

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "polybuild", *args]

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.argv(*args),
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def builder_on(host: SshHost, client: Client, name: str) -> None:
    # Both stores have it; the client's is the one used (FROM is the client's to resolve,
    # and tests reach no registry outside the machine).
    import_busybox(host.data_root, ("amd64",))
    import_busybox(Path(client.env["POLYBUILD_ROOT"]), ("amd64",))
    created = client.run("create", "--name", name, host.endpoint)
    assert created.returncode == 0, created.stderr


def context(tmp_path: Path, dockerfile: str = DOCKERFILE) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "hello.txt").write_text("hi\n")
    (ctx / "big.bin").write_bytes(b"\0" * 2_000_000)
    (ctx / ".dockerignore").write_text("big.bin\n")
    return ctx


def oci_layers(archive: Path, tmp_path: Path) -> tuple[list[str], dict[str, bytes]]:
    """The layer digests of the image in an OCI archive of one manifest, and the files of
    its last layer."""
    layout = tmp_path / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")

    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    index = json.loads((layout / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_text())
    digests = [layer["digest"] for layer in manifest["layers"]]
    with tarfile.open(blob(digests[-1]), mode="r:*") as layer:
        return digests, {
            m.name: layer.extractfile(m).read()  # type: ignore[union-attr]
            for m in layer.getmembers()
            if m.isfile()
        }


def sent(stderr: str, node: str) -> tuple[int, int]:
    found = re.search(rf"\[{node}\] context: sent (\d+) files \((\d+) bytes\)", stderr)
    assert found, stderr
    return int(found.group(1)), int(found.group(2))


def test_a_platform_is_built_on_an_ssh_node(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("rbuild")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "far")
    ctx = context(tmp_path)
    out = tmp_path / "out.tar"

    def build() -> str:
        output = f"type=oci,dest={out}"
        done = client.run("build", "--builder", "far", "--platform", "linux/amd64",
                          "--progress", "plain", "-o", output, str(ctx))  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    cold = build()
    files = ("Dockerfile", "hello.txt", ".dockerignore")  # big.bin is ignored: never sent
    assert sent(cold, "far0") == (3, sum((ctx / f).stat().st_size for f in files))
    # the node's steps as buildx names a one-node build's: no node, no platform
    assert re.search(r"^#\d+ \[3/3\] RUN uname -m > /arch$", cold, re.MULTILINE), cold
    layers, files = oci_layers(out, tmp_path / "cold")
    assert files == {"arch": b"x86_64\n"}
    # Built on the node: its cache and layers are there, not here.
    assert any((host.data_root / "remote" / "context" / "blobs" / "sha256").iterdir())

    warm = build()
    assert sent(warm, "far0") == (0, 0)
    steps = re.findall(r"^#(\d+) \[[23]/3\]", warm, re.MULTILINE)
    assert len(steps) == 2, warm  # COPY and RUN, both from the node's cache
    assert all(f"\n#{step} CACHED\n" in warm for step in steps), warm
    assert oci_layers(out, tmp_path / "warm") == (layers, files)
    assert wait_for_no_dial_stdio(host) == []  # the node's side ended with the build


def test_a_node_that_dies_fails_the_build_naming_it(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("rbdead")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "doomed")
    ctx = context(tmp_path, "FROM busybox\nRUN echo started; sleep 120\n")
    out = tmp_path / "out.tar"
    build = subprocess.Popen(
        client.argv("build", "--builder", "doomed", "--platform", "linux/amd64",
                    "--progress", "plain", "-o", f"type=oci,dest={out}", str(ctx)),
        env=client.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert build.stderr is not None
    lines = []
    for line in build.stderr:  # until the node runs the step
        lines.append(line)
        if "started" in line and "echo" not in line:
            break
    else:
        pytest.fail("the step never started:\n" + "".join(lines))
    test_host.stop("rbdead")
    stopped = time.monotonic()
    try:
        rest = build.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        build.kill()
        pytest.fail("the build did not fail within 30 s of its node dying")
    assert time.monotonic() - stopped < 30
    assert build.returncode == 1, "".join(lines) + rest  # a failed build: buildx's 1
    assert f"node doomed0 ({host.endpoint})" in rest, rest
    assert not out.exists()


def test_a_base_image_only_the_client_has(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("rbclient")  # a node that has never seen busybox's layers
    client = Client(host, tmp_path / "client-root")
    import_busybox(tmp_path / "client-root", ("amd64",), name="mine-only")
    assert client.run("create", "--name", "mine", host.endpoint).returncode == 0
    ctx = context(tmp_path, "FROM mine-only\nRUN uname -m > /arch\n")
    out = tmp_path / "out.tar"
    done = client.run("build", "--builder", "mine", "--platform", "linux/amd64",
                      "-o", f"type=oci,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    layers, files = oci_layers(out, tmp_path / "layout")
    assert files == {"arch": b"x86_64\n"}
    node_blobs = host.data_root / "content" / "blobs" / "sha256"
    assert all((node_blobs / d.removeprefix("sha256:")).is_file() for d in layers)
