"""imagetools against the registry: buildx's human view, --raw, --format templates, and create
(combine, deduplicate, fill platforms, Docker list only when all entries are Docker)."""

from __future__ import annotations

import asyncio
import json

from click.testing import CliRunner

from polybuild.cli import cli
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image, write_index
from polybuild.imagetools import combine_index, create, human, inspect
from polybuild.platforms import Platform
from polybuild.registry import push
from tests.registry.conftest import Registry, make_client
from tests.registry.proxy import Proxy

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")


def _run(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_inspect_human_raw_and_templates(
    store: ImageStore, registry: Registry, docker_config: object
) -> None:
    target = write_index(store.content, [AMD, ARM])
    ref = parse(f"{registry.host}/tools/inspect:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    index = json.loads(store.content.get(target.digest))
    digests = [m["digest"] for m in index["manifests"]]

    assert _run("imagetools", "inspect", str(ref)) == (
        f"Name:      {ref}\n"
        f"MediaType: {mt.OCI_INDEX}\n"
        f"Digest:    {target.digest}\n"
        "\n"
        "Manifests:\n"
        f"  Name:      {ref}@{digests[0]}\n"
        f"  MediaType: {mt.OCI_MANIFEST}\n"
        "  Platform:  linux/amd64\n"
        "\n"
        f"  Name:      {ref}@{digests[1]}\n"
        f"  MediaType: {mt.OCI_MANIFEST}\n"
        "  Platform:  linux/arm64\n"
    )
    raw = CliRunner().invoke(cli, ["imagetools", "inspect", "--raw", str(ref)]).stdout_bytes
    assert raw == store.content.get(target.digest)  # exactly the bytes the digest is of
    manifest = _run("imagetools", "inspect", "--format", "{{json .Manifest}}", str(ref))
    # buildx's .Manifest of an index: the document's fields plus its digest and size
    assert json.loads(manifest) == {**index, "digest": str(target.digest), "size": target.size}
    images = json.loads(_run("imagetools", "inspect", "--format", "{{json .Image}}", str(ref)))
    assert set(images) == {"linux/amd64", "linux/arm64"}
    arm = _run(
        "imagetools", "inspect", "--format", '{{json (index .Image "linux/arm64")}}', str(ref)
    )
    assert json.loads(arm)["architecture"] == "arm64"


def test_combine_index_rules() -> None:
    def descriptor(n: int, media_type: str, platform: Platform) -> Descriptor:
        return Descriptor(media_type, Digest("sha256", f"{n:064x}"), 100, platform)

    docker = [descriptor(1, mt.DOCKER_MANIFEST, AMD), descriptor(2, mt.DOCKER_MANIFEST, ARM)]
    combined = combine_index([*docker, docker[0]])
    assert combined.media_type == mt.DOCKER_MANIFEST_LIST
    assert [d.digest for d in combined.value.manifests] == [d.digest for d in docker]
    mixed = combine_index([docker[0], descriptor(3, mt.OCI_MANIFEST, ARM)])
    assert mixed.media_type == mt.OCI_INDEX


def test_create_combines_images_from_two_repositories(store: ImageStore, proxy: Proxy) -> None:
    amd = write_image(store.content, AMD)
    arm = write_image(store.content, ARM)
    # single-platform images pushed as plain manifests: their platforms come from the configs
    amd_ref, arm_ref = parse(f"{proxy.host}/tools/amd:1"), parse(f"{proxy.host}/tools/arm:1")
    plain_amd, plain_arm = amd.with_platform(None), arm.with_platform(None)
    asyncio.run(push(store.content, plain_amd, [amd_ref], client=make_client()))
    asyncio.run(push(store.content, plain_arm, [arm_ref], client=make_client()))
    target = parse(f"{proxy.host}/tools/multi:1")

    async def go() -> None:
        async with make_client() as client:
            dry = await create(client, [amd_ref, arm_ref], [target], dry_run=True)
            assert [e.platform for e in dry.value.manifests] == [AMD, ARM]
            proxy.reset()
            made = await create(client, [amd_ref, arm_ref, amd_ref], [target])
            assert made.raw == dry.raw  # deduplicated by digest
            assert proxy.count("PATCH") == 0 and proxy.count("PUT", "/blobs/uploads/") == 0
            inspection = await inspect(client, target)
            assert inspection.top.digest == made.digest
            assert "Platform:  linux/arm64" in human(inspection)
            # --append adds to what the tag already has; -p keeps only that platform
            extra = write_index(store.content, [Platform("linux", "s390x")])
            s390 = parse(f"{proxy.host}/tools/s390:1")
            await push(store.content, extra, [s390], client=client)
            appended = await create(client, [s390], [target], append=True)
            platforms = [e.platform for e in appended.value.manifests]
            assert platforms == [AMD, ARM, Platform("linux", "s390x")]
            only = await create(client, [target], [], dry_run=True, platforms=[ARM])
            assert [e.platform for e in only.value.manifests] == [ARM]

    asyncio.run(go())
