"""Faults injected between client and registry: pushes finish after retries (resuming chunked
uploads) or fail clearly; pulls never accept wrong bytes; nothing half-done is left behind."""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request

import pytest

from polybuild.errors import RegistryError
from polybuild.image import mediatypes as mt
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import RetryPolicy, pull, push
from tests.registry.conftest import Registry, make_client
from tests.registry.proxy import Proxy

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64")]
BIG = {"big": bytes(range(256)) * 8_000}  # ~2 MB layer: 8 chunks of 256 KiB


def _exists(registry: Registry, path: str) -> bool:
    try:
        accept = {"Accept": f"{mt.OCI_INDEX}, {mt.OCI_MANIFEST}"}
        request = urllib.request.Request(f"http://{registry.host}{path}", headers=accept)
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
        return False
    return True


def _nothing_left(store: ImageStore) -> None:
    """No image named, no partial blob, and every blob there is complete and correct."""
    assert store.records() == []
    ingest = store.content.ingest_dir
    assert not ingest.exists() or not any(ingest.iterdir())
    for digest in store.content:
        store.content.verify(digest)


def test_push_retries_500_503_and_429_honouring_retry_after(
    store: ImageStore, proxy: Proxy, registry: Registry
) -> None:
    target = write_index(store.content, PLATFORMS)
    proxy.fault("PUT", r"/blobs/uploads/", "status", status=500)
    proxy.fault("HEAD", r"/blobs/sha256:", "status", status=503, times=2)
    proxy.fault("PUT", r"/manifests/sha256:", "status", status=429, retry_after="1")
    ref = parse(f"{proxy.host}/faults/retry:1")
    started = time.monotonic()
    patient = RetryPolicy(attempts=5, initial_wait=0.05, max_wait=5)
    asyncio.run(push(store.content, target, [ref], client=make_client(retry=patient)))
    assert time.monotonic() - started >= 1.0  # waited as Retry-After said (not 0.05 s)
    statuses = [e.status for e in proxy.log]
    assert statuses.count(500) == 1 and statuses.count(503) == 2 and statuses.count(429) == 1
    assert _exists(registry, "/v2/faults/retry/manifests/1")


def test_chunked_upload_resumes_after_a_dropped_connection(
    store: ImageStore, proxy: Proxy, registry: Registry
) -> None:
    target = write_index(store.content, PLATFORMS[:1], BIG)
    # the third chunk's connection breaks half-way: the registry never saw that chunk
    proxy.fault("PATCH", r"/blobs/uploads/", "drop_request", skip=2)
    proxy.fault("PATCH", r"/blobs/uploads/", "status", status=503, skip=4)
    ref = parse(f"{proxy.host}/faults/resume:1")
    asyncio.run(push(store.content, target, [ref], client=make_client(chunk_size=256 << 10)))
    big_layer_posts = proxy.count("POST", r"/blobs/uploads/")
    assert big_layer_posts == 2  # config + layer: the layer's upload was resumed, not restarted
    status_checks = [e for e in proxy.log if e.method == "GET" and "/blobs/uploads/" in e.path]
    assert len(status_checks) == 2 and all(e.status == 204 for e in status_checks)
    fresh = ImageStore(store.root.parent / "fresh")
    asyncio.run(pull(fresh, ref, "all", client=make_client()))
    for digest in store.content:
        assert fresh.content.get(digest) == store.content.get(digest)


def test_monolithic_upload_dropped_mid_body_is_redone(store: ImageStore, proxy: Proxy) -> None:
    target = write_index(store.content, PLATFORMS[:1], BIG)
    proxy.fault("PUT", r"/blobs/uploads/", "drop_request")
    ref = parse(f"{proxy.host}/faults/mono:1")
    asyncio.run(push(store.content, target, [ref], client=make_client(chunk_size=8 << 20)))
    assert proxy.count("PATCH") == 0
    assert proxy.count("PUT", r"/manifests/1$") == 1


def test_push_that_keeps_failing_errors_clearly_and_tags_nothing(
    store: ImageStore, proxy: Proxy, registry: Registry
) -> None:
    target = write_index(store.content, PLATFORMS, BIG)
    proxy.fault("PATCH", r"/blobs/uploads/", "status", status=503, times=1000)
    proxy.fault("PUT", r"/blobs/uploads/", "status", status=503, times=1000)
    ref = parse(f"{proxy.host}/faults/broken:1")
    with pytest.raises(RegistryError) as failure:
        asyncio.run(push(store.content, target, [ref], client=make_client(chunk_size=256 << 10)))
    message = str(failure.value)
    assert proxy.host in message and "faults/broken" in message and "503" in message
    assert "gave up after 5 attempts" in message
    assert not _exists(registry, "/v2/faults/broken/manifests/1")
    assert proxy.count("PUT", r"/manifests/") == 0  # no manifest, no index


def test_truncated_blob_is_fetched_again(store: ImageStore, proxy: Proxy) -> None:
    target = write_index(store.content, PLATFORMS[:1], BIG)
    ref = parse(f"{proxy.host}/faults/truncated:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    proxy.reset()
    proxy.fault("GET", r"/blobs/sha256:", "truncate", times=2)
    fresh = ImageStore(store.root.parent / "fresh")
    asyncio.run(pull(fresh, ref, "all", client=make_client()))
    assert proxy.count("GET", r"/blobs/sha256:") == 4  # 2 blobs, each cut once
    for digest in store.content:
        assert fresh.content.get(digest) == store.content.get(digest)


def test_blob_with_wrong_bytes_is_refused_and_nothing_is_kept(
    store: ImageStore, proxy: Proxy
) -> None:
    target = write_index(store.content, PLATFORMS[:1], BIG)
    ref = parse(f"{proxy.host}/faults/corrupt:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    proxy.reset()
    proxy.fault("GET", r"/blobs/sha256:", "corrupt", times=1000)
    fresh = ImageStore(store.root.parent / "fresh")
    with pytest.raises(RegistryError, match=r"wrong content.*refused") as failure:
        asyncio.run(pull(fresh, ref, "all", client=make_client()))
    assert proxy.host in str(failure.value) and "faults/corrupt" in str(failure.value)
    _nothing_left(fresh)
    assert target.digest not in set(fresh.content)


def test_pull_that_cannot_finish_leaves_no_image(store: ImageStore, proxy: Proxy) -> None:
    target = write_index(store.content, PLATFORMS, BIG)
    ref = parse(f"{proxy.host}/faults/pullfail:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    proxy.reset()
    proxy.fault("GET", r"/blobs/sha256:", "truncate", times=1000)
    fresh = ImageStore(store.root.parent / "fresh")
    with pytest.raises(RegistryError, match="gave up after"):
        asyncio.run(pull(fresh, ref, "all", client=make_client()))
    _nothing_left(fresh)


def test_lost_answers_and_unreachable_registries(store: ImageStore, proxy: Proxy) -> None:
    target = write_index(store.content, PLATFORMS[:1])
    ref = parse(f"{proxy.host}/faults/lost:1")
    proxy.fault("PUT", r"/manifests/1$", "drop_response")  # stored, but the answer is lost
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    assert proxy.count("PUT", r"/manifests/1$") == 2

    client = make_client(retry=RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01))
    with pytest.raises(RegistryError, match=r"registry 127\.0\.0\.1:1: cannot connect") as failure:
        asyncio.run(
            pull(ImageStore(store.root.parent / "x"), "127.0.0.1:1/no/where:1", client=client)
        )
    assert failure.value.hint
