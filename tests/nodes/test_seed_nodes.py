"""The seed's "multiple native nodes" steps with polybuild in place of docker buildx, on two
test hosts and a real registry: create --use, create --append, build --push of two
platforms, imagetools inspect, then a fresh machine runs the image on each platform."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import import_busybox, require_platforms, run_cli
from tests.nodes.hosts import SshHosts
from tests.nodes.test_remote_build import Client
from tests.registry.conftest import Registry, registry  # noqa: F401 (a fixture)

DOCKERFILE = """FROM busybox
ARG TARGETPLATFORM BUILDPLATFORM
RUN echo "I was built for $TARGETPLATFORM on a node that is $(uname -m)" > /log
"""


def test_the_seeds_native_nodes_steps(
    test_host: SshHosts,
    tmp_path: Path,
    registry: Registry,  # noqa: F811
) -> None:
    require_platforms("linux/arm64")
    amd, arm = test_host("seedamd"), test_host("seedarm")
    client = Client(amd, tmp_path / "client-root")
    import_busybox(tmp_path / "client-root", ("amd64", "arm64"))

    def ok(*args: str) -> str:
        done = client.run(*args)
        assert done.returncode == 0, f"polybuild {' '.join(args)}:\n{done.stderr}"
        return done.stdout + done.stderr

    ok("create", "--use", "--name", "mybuilder", "--node", "node-amd64",
       "--platform", "linux/amd64", amd.endpoint)  # fmt: skip
    ok("create", "--append", "--name", "mybuilder", "--node", "node-arm64",
       "--platform", "linux/arm64", arm.endpoint)  # fmt: skip
    shown = ok("inspect", "--bootstrap")
    assert shown.count("Status:            running") == 2, shown
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    ref = f"{registry.host}/seed/nodes:1"
    log = ok("build", "--platform", "linux/amd64,linux/arm64", "-t", ref, "--push",
             "--progress", "plain", str(ctx))  # fmt: skip
    # buildx's names for a build two nodes share: the platform first, no node
    assert "[linux/arm64 2/2] RUN echo" in log and "[linux/amd64 2/2] RUN echo" in log, log
    assert not re.search(r"^#\d+ \[node-(amd|arm)64 [^\]]*\d/\d\]", log, re.MULTILINE), log
    inspected = ok("imagetools", "inspect", ref)
    platforms = [line.split()[-1] for line in inspected.splitlines() if "Platform:" in line]
    # the images, then buildx's default provenance for each (made on the client)
    assert platforms == ["linux/amd64", "linux/arm64", *["unknown/unknown"] * 2], inspected

    fresh = tmp_path / "fresh"  # another machine: nothing but the registry
    pulled = run_cli(fresh, "pull", "--all-platforms", ref)
    assert pulled.returncode == 0, pulled.stderr
    for platform, machine in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        ran = run_cli(fresh, "run", "--platform", platform, ref, "cat", "/log")
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout == f"I was built for {platform} on a node that is {machine}\n"
