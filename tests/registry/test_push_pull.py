"""Push and pull against the real registry: exact bytes, deduplicated uploads, mounts across
repositories, chunked uploads, tag pagination, and platform choice on pull."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest

from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import client as client_module
from polybuild.registry import pull, push
from tests.registry.conftest import Registry, make_client
from tests.registry.proxy import Proxy

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64"), Platform("linux", "arm", "v7")]
BLOB_UPLOADS = r"/blobs/uploads/"


def _get(url: str, accept: str = mt.OCI_INDEX) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(request, timeout=10) as response:
        return bytes(response.read())


def _image(store: ImageStore, size: int = 300_000) -> Descriptor:
    # Distinct content per platform so each has its own layer.
    return write_index(store.content, PLATFORMS, {"data": b"x" * size})


def test_push_keeps_exact_bytes_and_pull_restores_them(
    store: ImageStore, registry: Registry
) -> None:
    target = write_index(store.content, PLATFORMS)
    ref = parse(f"{registry.host}/push/exact:1")
    pushed = asyncio.run(push(store.content, target, [ref], client=make_client()))
    assert pushed.digest == target.digest
    raw = _get(f"http://{registry.host}/v2/push/exact/manifests/1")
    assert raw == store.content.get(target.digest)

    fresh = ImageStore(store.root.parent / "fresh")
    pulled = asyncio.run(pull(fresh, ref, "all", client=make_client()))
    assert pulled.target.digest == target.digest
    assert fresh.content.get(target.digest) == raw
    assert [r.name for r in fresh.records()] == [ref]
    assert fresh.platforms(pulled.target) == tuple(PLATFORMS)
    for digest in store.content:
        assert fresh.content.get(digest) == store.content.get(digest)


def test_pushing_twice_uploads_no_blob_the_second_time(store: ImageStore, proxy: Proxy) -> None:
    target = _image(store)
    ref = parse(f"{proxy.host}/push/twice:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    first_uploads = proxy.count("POST", BLOB_UPLOADS)
    assert first_uploads >= 4  # one layer per platform... shared data layer, plus configs
    proxy.reset()
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    assert proxy.count("POST", BLOB_UPLOADS) == 0
    assert proxy.count("PATCH") == 0
    assert proxy.count("PUT", BLOB_UPLOADS) == 0
    assert proxy.count("HEAD", r"/blobs/sha256:") >= 4
    assert proxy.count("PUT", r"/manifests/1$") == 1, proxy.log


def test_second_repository_mounts_instead_of_uploading(store: ImageStore, proxy: Proxy) -> None:
    target = _image(store)
    first = parse(f"{proxy.host}/mount/source:1")
    asyncio.run(push(store.content, target, [first], client=make_client()))
    proxy.reset()
    second = parse(f"{proxy.host}/mount/target:1")
    asyncio.run(push(store.content, target, [second], client=make_client()))
    mounts = [e for e in proxy.log if e.method == "POST" and "mount=" in e.path]
    assert mounts and all(e.status == 201 and "from=mount%2Fsource" in e.path for e in mounts)
    assert proxy.count("PATCH") == 0
    assert proxy.count("PUT", BLOB_UPLOADS) == 0


def test_one_push_to_two_tags_uploads_once_and_pushes_the_index_per_tag(
    store: ImageStore, proxy: Proxy
) -> None:
    target = _image(store)
    refs = [parse(f"{proxy.host}/push/tags:a"), parse(f"{proxy.host}/push/tags:b")]
    asyncio.run(push(store.content, target, refs, client=make_client()))
    uploads = proxy.count("POST", BLOB_UPLOADS)
    assert uploads == len({*store.content} - {target.digest}) - 3  # minus 3 manifests
    assert proxy.count("PUT", r"/manifests/a$") == 1
    assert proxy.count("PUT", r"/manifests/b$") == 1
    # the index is pushed after every platform manifest
    puts = [e.path for e in proxy.log if e.method == "PUT" and "/manifests/" in e.path]
    assert puts[-2:] == ["/v2/push/tags/manifests/a", "/v2/push/tags/manifests/b"]


def test_large_blobs_go_up_in_chunks(store: ImageStore, proxy: Proxy) -> None:
    target = write_index(store.content, PLATFORMS[:1], {"big": bytes(range(256)) * 12_000})
    ref = parse(f"{proxy.host}/push/chunks:1")
    client = make_client(chunk_size=256 << 10)
    asyncio.run(push(store.content, target, [ref], client=client))
    assert proxy.count("PATCH") >= 12  # ~3 MB layer in 256 KiB chunks
    fresh = ImageStore(store.root.parent / "fresh")
    asyncio.run(pull(fresh, ref, [PLATFORMS[0]], client=make_client()))
    for digest in store.content:
        fresh.content.verify(digest)


def test_tags_are_listed_across_pages(
    store: ImageStore, registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(client_module, "TAGS_PAGE", 2)
    target = write_index(store.content, PLATFORMS[:1])
    names = [f"t{n}" for n in range(5)]
    refs = [parse(f"{registry.host}/push/paged:{n}") for n in names]
    asyncio.run(push(store.content, target, refs, client=make_client()))

    async def tags() -> list[str]:
        async with make_client() as client:
            return await client.list_tags(parse(f"{registry.host}/push/paged"))

    assert sorted(asyncio.run(tags())) == names


def test_pull_chooses_by_containerd_rules_and_fetches_shared_layers_once(
    store: ImageStore, proxy: Proxy
) -> None:
    only_arm = write_index(store.content, [Platform("linux", "arm", "v7"), PLATFORMS[0]])
    ref = parse(f"{proxy.host}/pull/rules:1")
    asyncio.run(push(store.content, only_arm, [ref], client=make_client()))
    proxy.reset()
    fresh = ImageStore(store.root.parent / "fresh")
    # linux/arm64 runs arm/v7 (containerd's fallback), so that variant is chosen
    pulled = asyncio.run(pull(fresh, ref, [Platform("linux", "arm64")], client=make_client()))
    assert [m.platform for m in pulled.manifests] == [Platform("linux", "arm", "v7")]
    both = asyncio.run(pull(fresh, ref, list(PLATFORMS[::2]), client=make_client()))
    assert len(both.manifests) == 2
    gets = [e.path for e in proxy.log if e.method == "GET" and "/blobs/" in e.path]
    assert len(gets) == len(set(gets))  # every blob fetched once, however often it is needed


def test_pull_refuses_a_platform_the_image_lacks(store: ImageStore, registry: Registry) -> None:
    from polybuild.image.select import NoMatchingPlatformError

    target = write_index(store.content, PLATFORMS[:1])
    ref = parse(f"{registry.host}/pull/lacks:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    fresh = ImageStore(store.root.parent / "fresh")
    with pytest.raises(NoMatchingPlatformError, match=r"linux/s390x.*available: linux/amd64"):
        asyncio.run(pull(fresh, ref, [Platform("linux", "s390x")], client=make_client()))
    assert fresh.records() == []


def test_pull_by_digest_and_docker_media_types(store: ImageStore, registry: Registry) -> None:
    target = write_index(store.content, PLATFORMS)
    ref = parse(f"{registry.host}/pull/docker:1")
    pushed = asyncio.run(
        push(store.content, target, [ref], docker_media_types=True, client=make_client())
    )
    assert pushed.media_type == mt.DOCKER_MANIFEST_LIST
    raw = _get(f"http://{registry.host}/v2/pull/docker/manifests/1", mt.DOCKER_MANIFEST_LIST)
    document = json.loads(raw)
    assert document["mediaType"] == mt.DOCKER_MANIFEST_LIST
    assert {m["mediaType"] for m in document["manifests"]} == {mt.DOCKER_MANIFEST}
    child = _get(
        f"http://{registry.host}/v2/pull/docker/manifests/{document['manifests'][0]['digest']}",
        mt.DOCKER_MANIFEST,
    )
    assert json.loads(child)["config"]["mediaType"] == mt.DOCKER_CONFIG
    fresh = ImageStore(store.root.parent / "fresh")
    pinned = ref.with_digest(pushed.digest)
    pulled = asyncio.run(pull(fresh, f"{pinned.name}@{pushed.digest}", "all", client=make_client()))
    assert pulled.target.digest == pushed.digest
    assert fresh.content.get(pushed.digest) == raw
