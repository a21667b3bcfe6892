"""The build cache with nodes, over the local transport (`polybuild dial-stdio` children with
data roots of their own) and a real registry: two nodes building one platform each send
their records back and the client writes ONE cache holding both (no node overwrites the
other's, docker/buildx#1044), which a one-machine build on an empty data root then hits for
both platforms; a node given `--cache-from` imports it itself and runs no step."""

from __future__ import annotations

import asyncio
import json
import tarfile
from pathlib import Path

import httpx
import pytest

from polybuild.builders import Node
from polybuild.imagebuild.cache_flow import export_build_cache
from polybuild.imagebuild.driver import NodeBuild, Planned, build_on_nodes
from polybuild.imagebuild.pins import Pins
from polybuild.imagebuild.remote_driver import RemoteDriver
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse
from polybuild.progress.writer import ProgressWriter, Recorder
from polybuild.runtime import Runtime
from tests.conftest import import_busybox, require_platforms, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (a fixture)
from tests.remote.test_remote_driver import local_node

pytestmark = [pytest.mark.root, pytest.mark.integration]
AMD64, ARM64 = parse("linux/amd64"), parse("linux/arm64")
EPOCH = "1700000000"


def node_driver(name: str, root: Path, client: Runtime) -> RemoteDriver:
    node = Node(name, endpoint=f"ssh://{name}")
    return RemoteDriver(node, client, Pins(), opener=local_node(root))


def last_layers(images: tuple[object, ...]) -> dict[str, str]:
    return {
        str(image.platform): str(image.manifest.value.layers[-1].digest)  # type: ignore[attr-defined]
        for image in images
    }


def test_two_nodes_export_one_cache_that_a_fresh_machine_hits(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    require_platforms("linux/arm64")
    base = f"{registry.host}/library/busybox:latest"
    seed = tmp_path / "seed"
    import_busybox(seed, ("amd64", "arm64"), name=base)
    assert run_cli(seed, "push", base).returncode == 0
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        f"FROM {base} AS build\nRUN cat /proc/sys/kernel/random/uuid > /made\n"
        f"FROM {base}\nCOPY --from=build /made /made\nRUN cat /proc/sys/kernel/random/uuid > /u\n"
    )
    cache = f"{registry.host}/cache/nodes:1"
    client = Runtime(tmp_path / "client")
    request = make_request(
        ctx, platforms=["linux/amd64", "linux/arm64"], progress="quiet",
        cache_to=[f"type=registry,ref={cache},mode=max"],
        build_args={"SOURCE_DATE_EPOCH": EPOCH},
    )  # fmt: skip
    planned = [
        Planned(node_driver("node-a", tmp_path / "node-a", client), (AMD64,)),
        Planned(node_driver("node-b", tmp_path / "node-b", client), (ARM64,)),
    ]
    writer = ProgressWriter(Recorder())

    async def build_and_export() -> NodeBuild:
        built = await build_on_nodes(request, planned, writer)
        await export_build_cache(request, built.records, built.images, client.store.content, writer)
        return built

    built = asyncio.run(build_and_export())
    # Every record's layers came to the client, the build stage's too (mode=max).
    assert len(built.records) >= 6
    assert all(client.store.content.exists(x.blob) for c in built.records.values() for x in c)
    manifest = httpx.get(
        f"http://{registry.host}/v2/cache/nodes/manifests/1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    config = httpx.get(
        f"http://{registry.host}/v2/cache/nodes/blobs/{manifest['config']['digest']}"
    ).json()
    assert {r["digest"] for r in config["records"]} == set(built.records)  # both nodes'

    # A one-machine build on an empty data root: every step of both platforms hits.
    fresh = tmp_path / "fresh"
    out = tmp_path / "fresh.tar"
    done = run_cli(fresh, "build", "--platform", "linux/amd64,linux/arm64",
                   "--build-arg", f"SOURCE_DATE_EPOCH={EPOCH}", "--cache-from", cache,
                   "-o", f"type=oci,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Same final layers as the nodes built: the RUN writing a fresh uuid did not run again.
    with tarfile.open(out) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
        top = json.load(
            tar.extractfile("blobs/" + index["manifests"][0]["digest"].replace(":", "/"))
        )  # type: ignore[arg-type]
        got = {}
        for entry in top["manifests"]:
            p = entry["platform"]
            if p["os"] == "unknown":
                continue  # buildx's default provenance
            image = json.load(tar.extractfile("blobs/" + entry["digest"].replace(":", "/")))  # type: ignore[arg-type]
            got[f"{p['os']}/{p['architecture']}"] = image["layers"][-1]["digest"]
    assert got == last_layers(built.images)

    # A node given --cache-from imports it itself and runs nothing.
    importing = make_request(
        ctx, platforms=["linux/arm64"], progress="quiet", cache_from=[cache],
        build_args={"SOURCE_DATE_EPOCH": EPOCH},
    )  # fmt: skip
    third = node_driver("node-c", tmp_path / "node-c", Runtime(tmp_path / "client-2"))
    again = asyncio.run(third.build(importing, (ARM64,), ProgressWriter(Recorder())))
    assert again.executed == ()
    assert last_layers(again.images) == {"linux/arm64": last_layers(built.images)["linux/arm64"]}


def test_a_node_is_not_sent_a_local_cache_directory(tmp_path: Path) -> None:
    from polybuild.errors import UsageError

    driver = node_driver("far", tmp_path / "node", Runtime(tmp_path / "client"))
    request = make_request(tmp_path, cache_from=[f"type=local,src={tmp_path}"])
    with pytest.raises(UsageError, match="far \\(ssh://far\\) reads registry caches only"):
        driver.check(request)
    driver.check(make_request(tmp_path, cache_from=["r.test/cache:1"]))  # a registry: fine
