"""`--build-context` on an ssh node (a test host in namespaces of its own): a directory is
sent with the build context (its own .dockerignore applied here, only the files the node
lacks), a git source is fetched here and sent the same way, an OCI layout's image is offered
by this machine (with `--pull` too: it is known by digest) and never pulled by the node."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from tests.imagebuild.test_named_context_builds import GitServer, git_server  # noqa: F401
from tests.nodes.conftest import test_host_factory  # noqa: F401 (the test_host fixture)
from tests.nodes.hosts import SshHosts
from tests.nodes.test_remote_build import Client, builder_on, sent

pytestmark = [pytest.mark.root, pytest.mark.integration]


def test_named_contexts_on_an_ssh_node(
    test_host: SshHosts, tmp_path: Path, busybox_rootfs: object,
    git_server: tuple[GitServer, str, str],  # noqa: F811
) -> None:  # fmt: skip
    host = test_host("named")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "nodenamed")
    server, _, _ = git_server
    # An image only this machine has, in an OCI layout.
    src = tmp_path / "src"
    src.mkdir()
    (src / "Dockerfile").write_text("FROM busybox\nRUN echo layout > /layout\nWORKDIR /w\n")
    archive = tmp_path / "l.tar"
    made = client.run("build", "--builder", "default", "--platform", "linux/amd64",
                      "-o", f"type=oci,dest={archive}", str(src))  # fmt: skip
    assert made.returncode == 0, made.stderr
    layout = tmp_path / "layout"
    with tarfile.open(archive) as tar:
        tar.extractall(layout, filter="data")
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "tool.txt").write_text("tool\n")
    (tools / "secret").write_text("never sent\n")
    (tools / ".dockerignore").write_text("secret\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM rootfs AS r\nRUN echo ran > /ran\n"
        "FROM base\n"
        "COPY --from=tools / /tools/\n"
        "COPY --from=r /ran /ran\n"
        "COPY --from=src f /f\n"
        "RUN --mount=from=tools,target=/m ls -a /m > /listing; pwd > /pwd; cat /layout > /l\n"
        "COPY . /main/\n"
    )
    (ctx / "main.txt").write_text("main\n")
    out = tmp_path / "out"

    def build(*flags: str) -> str:
        done = client.run("build", "--builder", "nodenamed", "--platform", "linux/amd64",
                          "--progress", "plain", *flags,
                          "--build-context", f"tools={tools}",
                          "--build-context", f"rootfs={busybox_rootfs('amd64')}",  # type: ignore[operator]
                          "--build-context", f"src={server.url}#v1:sub",
                          "--build-context", f"base=oci-layout://{layout}@{entry['digest']}",
                          "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stderr

    cold = build("--pull")
    assert "[nodenamed0 linux/amd64" in cold  # built on the node
    assert (out / "ran").read_text() == "ran\n"
    assert (out / "tools" / "tool.txt").read_text() == "tool\n"
    assert not (out / "tools" / "secret").exists()
    assert "secret" not in (out / "listing").read_text().split()
    assert (out / "f").read_text() == "one\n"
    assert (out / "l").read_text() == "layout\n" and (out / "pwd").read_text() == "/w\n"
    # The build context does not carry the named directories in its own files.
    assert sorted(p.name for p in (out / "main").iterdir()) == ["Dockerfile", "main.txt"]
    warm = build()
    assert sent(warm, "nodenamed0") == (0, 0)  # every file is in the node's cache already
