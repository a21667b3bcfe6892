"""An image a BuildKit daemon pushed by digest: `fetch_pushed` brings back its index,
manifests and configs but never a layer, and pushing an index over it (the client's job in
a multi-node build) uploads no layer, also to another repository (mounted) and with Docker
media types; a store that does not know where the layers are refuses, naming the layer."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.manifest import parse_index, parse_manifest
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import push
from polybuild.registry.push_plan import plan_push
from polybuild.registry.pushed import fetch_pushed
from tests.registry.conftest import make_client
from tests.registry.proxy import Proxy

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64")]


def test_a_pushed_image_comes_back_without_layers_and_pushes_without_them(
    store: ImageStore, proxy: Proxy
) -> None:
    target = write_index(store.content, PLATFORMS, {"data": b"y" * 200_000})
    by_digest = parse(f"{proxy.host}/daemon/app", default_tag=False)
    asyncio.run(push(store.content, target, [by_digest.with_digest(target.digest)],
                     client=make_client()))  # fmt: skip
    client = store.root.parent / "client"
    mine = ImageStore(client)
    asyncio.run(fetch_pushed(mine, by_digest, target, client=make_client()))
    index = parse_index(mine.content.get(target.digest), target.media_type).value
    layers = []
    for entry in index.manifests:
        manifest = parse_manifest(mine.content.get(entry.digest), entry.media_type).value
        assert mine.content.exists(manifest.config.digest)
        layers.extend(layer.digest for layer in manifest.layers)
    assert layers and not any(mine.content.exists(d) for d in layers)

    proxy.reset()
    tags = [parse(f"{proxy.host}/daemon/app:1"), parse(f"{proxy.host}/other/app:1")]
    asyncio.run(push(mine.content, target, tags, client=make_client(), docker_media_types=True))
    assert proxy.count("PATCH") == 0
    for digest in layers:  # found in daemon/app, mounted into other/app, never uploaded
        assert proxy.count("PUT", f"/blobs/uploads/.*{digest}") == 0, proxy.log
    mounts = [e for e in proxy.log if e.method == "POST" and "from=daemon%2Fapp" in e.path]
    assert len(mounts) >= len(set(layers))
    request = urllib.request.Request(
        f"http://{proxy.host}/v2/other/app/manifests/1", headers={"Accept": mt.DOCKER_MANIFEST_LIST}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == mt.DOCKER_MANIFEST_LIST


def test_a_layer_nobody_holds_is_refused_by_name(store: ImageStore) -> None:
    target = write_index(store.content, PLATFORMS, {"data": b"z"})
    manifest_entry = parse_index(store.content.get(target.digest), target.media_type)
    first = manifest_entry.value.manifests[0]
    layer = parse_manifest(store.content.get(first.digest), first.media_type).value.layers[0]
    store.content.path(layer.digest).unlink()
    with pytest.raises(ImageError, match=str(layer.digest)):
        plan_push(store.content, target)
    plan = plan_push(store.content, target, elsewhere=lambda digest: digest == layer.digest)
    assert layer.digest in {b.digest for b in plan.blobs}
