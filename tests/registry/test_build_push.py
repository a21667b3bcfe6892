"""`polybuild build --push` and `FROM` through a registry mirror, with the real registry."""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path

import pytest

from polybuild.image import mediatypes as mt
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.registry import push
from tests.conftest import import_busybox, require_platforms, require_root, require_tool, run_cli
from tests.registry.conftest import Registry, make_client

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

THREE = "linux/amd64,linux/arm64,linux/arm/v7"
SEED = """\
FROM --platform=$BUILDPLATFORM busybox AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM busybox
COPY --from=build /log /log
"""


def polybuild(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = run_cli(root, *args, env=env)
    assert proc.returncode == 0, f"polybuild {' '.join(args)}:\n{proc.stderr}"
    return str(proc.stdout)


def test_build_push_then_inspect_and_run_elsewhere(
    tmp_path: Path, registry: Registry, docker_config: Path
) -> None:
    require_root()
    require_platforms(*THREE.split(","))
    skopeo = require_tool("skopeo")
    builder = tmp_path / "builder"
    import_busybox(builder)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(SEED)
    ref = f"{registry.host}/user/seed:latest"
    polybuild(builder, "build", "--platform", THREE, "-t", ref, "--push", str(ctx))
    shown = polybuild(tmp_path / "viewer", "imagetools", "inspect", ref)
    assert f"MediaType: {mt.OCI_INDEX}" in shown
    for platform in THREE.split(","):
        assert f"Platform:  {platform}" in shown

    # oci-mediatypes=false: a Docker manifest list, as in the seed's output. Attestations
    # need OCI types: buildx's default provenance makes BuildKit refuse it, as here.
    docker_ref = f"{registry.host}/user/seed:docker"
    docker_output = f"type=image,name={docker_ref},push=true,oci-mediatypes=false"
    refused = run_cli(builder, "build", "--platform", THREE, "-o", docker_output, str(ctx))
    assert refused.returncode == 1
    assert 'cannot export attestations with "oci-mediatypes=false"' in refused.stderr
    polybuild(
        builder, "build", "--platform", THREE, "-o", docker_output, "--provenance=false", str(ctx)
    )
    raw = polybuild(tmp_path / "viewer", "imagetools", "inspect", "--raw", docker_ref)
    assert json.loads(raw)["mediaType"] == mt.DOCKER_MANIFEST_LIST
    skopeo_raw = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", "--raw", f"docker://{docker_ref}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert skopeo_raw == raw

    # Another machine pulls its variant and runs it.
    other = tmp_path / "other"
    polybuild(other, "pull", "--platform", "linux/arm/v7", ref)
    out = polybuild(other, "run", "--platform", "linux/arm/v7", ref, "cat", "/log")
    assert out.strip() == "I am running on linux/amd64, building for linux/arm/v7"


def test_from_busybox_comes_from_the_docker_io_mirror(
    tmp_path: Path, registry: Registry, docker_config: Path
) -> None:
    require_root()
    require_platforms("linux/amd64", "linux/arm64")
    seed_store = tmp_path / "seed-store"
    import_busybox(seed_store, ("amd64", "arm64"))
    store = ImageStore(seed_store)
    mirrored = parse(f"{registry.host}/library/busybox:latest")
    asyncio.run(
        push(store.content, store.resolve("busybox").target, [mirrored], client=make_client())
    )
    config = tmp_path / "polybuild.toml"
    config.write_text(f'[registry."docker.io"]\nmirrors = ["{registry.host}"]\n')
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN uname -m > /arch\n")
    fresh = tmp_path / "fresh"  # no busybox here: FROM must pull it through the mirror
    env = {"POLYBUILD_CONFIG": str(config)}
    polybuild(
        fresh,
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "mirrored",
        "--load",
        str(ctx),
        env=env,
    )
    out = polybuild(fresh, "run", "--all-platforms", "mirrored", "cat", "/arch", env=env)
    assert [line.split("|")[1].strip() for line in out.splitlines()] == ["x86_64", "aarch64"]
    assert "docker.io/library/busybox" in polybuild(
        fresh, "images", "--no-trunc", env=env
    ) or "busybox" in polybuild(fresh, "images", env=env)
