"""`--secret` on an ssh node: the step gets it (on a private tmpfs), and nothing of it is
left on the node's disk: not in its data root (cache, layers, context cache, logs) nor
in its /tmp. `--ssh` cannot be forwarded to a node yet, and says so."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import socket
from pathlib import Path

from tests.nodes.hosts import SshHosts
from tests.nodes.test_remote_build import Client, builder_on, oci_layers

DOCKERFILE = (
    "FROM busybox\n"
    "RUN --mount=type=secret,id=token sha256sum /run/secrets/token | cut -c1-64 > /checked "
    "&& grep ' /run/secrets/token ' /proc/self/mountinfo | sed 's/.* - //' > /fs\n"
)


def files_holding(needle: bytes, top: Path) -> list[Path]:
    """Every file under `top` whose bytes (or gunzipped bytes) contain `needle`."""
    found = []
    for path in top.rglob("*"):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            with contextlib.suppress(OSError, EOFError):
                data += gzip.decompress(data)
        if needle in data:
            found.append(path)
    return found


def test_a_secret_reaches_the_step_and_never_the_nodes_disk(
    test_host: SshHosts, tmp_path: Path
) -> None:
    host = test_host("secrets")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "sec")
    secret = "s3cr3t-" + os.urandom(12).hex()
    (tmp_path / "token").write_text(secret)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    out = tmp_path / "out.tar"
    built = client.run(
        "build", "--builder", "sec", "--platform", "linux/amd64",
        "--secret", f"id=token,src={tmp_path / 'token'}", "-o", f"type=oci,dest={out}", str(ctx),
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    _, files = oci_layers(out, tmp_path / "unpacked")
    assert files["checked"].decode().strip() == hashlib.sha256(secret.encode()).hexdigest()
    assert files["fs"].decode().startswith("tmpfs polybuild-secrets "), files["fs"]
    node_tmp = host.data_root.parent / "tmp"
    assert any(host.data_root.rglob("*")) and node_tmp.is_dir()  # we look where the node writes
    for top in (host.data_root, node_tmp):
        assert files_holding(secret.encode(), top) == [], "the secret is on the node's disk"


def test_an_ssh_agent_is_not_forwarded_to_a_node(test_host: SshHosts, tmp_path: Path) -> None:
    host = test_host("secrets")
    client = Client(host, tmp_path / "client-root")
    builder_on(host, client, "agent")
    agent = tmp_path / "agent.sock"
    with socket.socket(socket.AF_UNIX) as listening:
        listening.bind(str(agent))
        ctx = tmp_path / "ctx"
        ctx.mkdir()
        (ctx / "Dockerfile").write_text("FROM busybox\nRUN --mount=type=ssh true\n")
        built = client.run("build", "--builder", "agent", "--platform", "linux/amd64",
                           "--ssh", f"default={agent}", str(ctx))  # fmt: skip
    assert built.returncode == 2, built.stderr
    assert "--ssh: forwarding an SSH agent to a remote node is not supported yet" in built.stderr
