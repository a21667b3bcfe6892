"""The seed's "multiple native nodes" strategy on two test hosts: one builder, each platform
pinned to its node, one index; with SOURCE_DATE_EPOCH it is the very index a one-machine
build makes, and a rebuild on the same builder runs nothing."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

from tests.conftest import import_busybox, require_platforms
from tests.nodes.hosts import SshHosts
from tests.nodes.test_remote_build import Client, oci_layers

DOCKERFILE = """FROM busybox
ARG TARGETPLATFORM
COPY hello.txt /
RUN uname -m > /arch && echo "$TARGETPLATFORM" > /platform
"""


def index_digest(metadata: Path) -> str:
    digest: str = json.loads(metadata.read_text())["containerimage.digest"]
    return digest


def archs_in(oci: Path) -> dict[str, bytes]:
    """What /arch says in each platform's image of an OCI tarball (layer by layer)."""
    found: dict[str, bytes] = {}
    with tarfile.open(oci) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        top = index["manifests"][0]["digest"].replace(":", "/")
        inner = json.load(tar.extractfile(f"blobs/{top}"))  # type: ignore[arg-type]
        for entry in inner["manifests"]:
            if entry["platform"]["os"] == "unknown":
                continue  # an attestation manifest
            platform = entry["platform"]["os"] + "/" + entry["platform"]["architecture"]
            manifest = json.load(tar.extractfile("blobs/" + entry["digest"].replace(":", "/")))  # type: ignore[arg-type]
            last = manifest["layers"][-1]["digest"].replace(":", "/")
            with tarfile.open(fileobj=tar.extractfile(f"blobs/{last}")) as layer:
                found[platform] = layer.extractfile("arch").read()  # type: ignore[union-attr]
    return found


def test_two_nodes_build_one_index_a_local_build_would(test_host: SshHosts, tmp_path: Path) -> None:
    require_platforms("linux/arm64")
    amd, arm = test_host("amd"), test_host("arm")
    client = Client(amd, tmp_path / "client-root")
    client.env["SOURCE_DATE_EPOCH"] = "1700000000"
    # The indexes are compared byte for byte: without buildx's default provenance, which
    # records when each build ran (an attestation manifest per image otherwise)
    client.env["BUILDX_NO_DEFAULT_ATTESTATIONS"] = "1"
    import_busybox(tmp_path / "client-root", ("amd64", "arm64"))  # the nodes have nothing
    create = client.run("create", "--name", "two", "--node", "node-amd64", "--platform",
                        "linux/amd64", amd.endpoint)  # fmt: skip
    assert create.returncode == 0, create.stderr
    append = client.run("create", "--append", "--name", "two", "--node", "node-arm64",
                        "--platform", "linux/arm64", arm.endpoint)  # fmt: skip
    assert append.returncode == 0, append.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "hello.txt").write_text("hi\n")

    def build(builder: str, name: str) -> tuple[str, str]:
        metadata = tmp_path / f"{name}.json"
        result = client.run(
            "build", "--builder", builder, "--platform", "linux/amd64,linux/arm64",
            "--progress", "plain", "--metadata-file", str(metadata),
            "-o", f"type=oci,dest={tmp_path / name}.tar", str(ctx),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return index_digest(metadata), result.stderr

    remote, log = build("two", "remote")
    # Each platform ran on its own node, its steps named as buildx's nodes of one build
    # name them (the platform first, as a multi-platform build's, with no node; the node
    # only in its own `connecting to` and `context: sent` steps)...
    assert "[linux/amd64 3/3] RUN uname" in log, log
    assert "[linux/arm64 3/3] RUN uname" in log, log
    assert not re.search(r"^#\d+ \[node-(amd|arm)64 [^\]]*\d/\d\]", log, re.MULTILINE), log
    # ... and the report after the build says which node built what natively.
    assert re.search(
        rf"^Built on:\n  node-amd64 \({re.escape(amd.endpoint)}\)  linux/amd64  native\n"
        rf"  node-arm64 \({re.escape(arm.endpoint)}\)  linux/arm64  emulated \(1 step ran, ",
        log,
        re.MULTILINE,
    ), log
    assert archs_in(tmp_path / "remote.tar") == {
        "linux/amd64": b"x86_64\n",
        "linux/arm64": b"aarch64\n",
    }
    for host in (amd, arm):  # the nodes' own caches hold the work
        assert host.run("ls", "/var/lib/polybuild/cache", check=False).returncode == 0
    local, _ = build("default", "local")
    assert remote == local  # byte for byte the index this machine builds alone
    again, log = build("two", "again")
    assert again == remote
    assert " DONE" in log and "CACHED" in log
    assert "context: sent 0 files (0 bytes)" in log


def test_check_reproducible_builds_again_on_the_other_node(
    test_host: SshHosts, tmp_path: Path
) -> None:
    one, other = test_host("amd"), test_host("arm")
    client = Client(one, tmp_path / "client-root")
    client.env["SOURCE_DATE_EPOCH"] = "1700000000"
    import_busybox(tmp_path / "client-root", ("amd64",))
    for args in (("--node", "first", "--platform", "linux/amd64", one.endpoint),
                 ("--append", "--node", "second", other.endpoint)):  # fmt: skip
        created = client.run("create", "--name", "pair", *args)
        assert created.returncode == 0, created.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "hello.txt").write_text("hi\n")
    out = tmp_path / "out.tar"
    done = client.run("build", "--builder", "pair", "--platform", "linux/amd64",
                      "--check-reproducible", "--progress", "plain",
                      "-o", f"type=oci,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[check] [3/3] RUN uname" in done.stderr  # the other node: named as buildx
    assert (
        f"reproducible: linux/amd64 built on first ({one.endpoint}) and on second "
        f"({other.endpoint}): sha256:"
    ) in done.stderr
    assert oci_layers(out, tmp_path / "unpacked")[1]["arch"] == b"x86_64\n"
