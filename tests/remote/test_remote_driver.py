"""RemoteDriver end to end over the local transport (a `polybuild dial-stdio` child with a
data root of its own, no ssh): the node builds with its own store and runc, the client
gets the images and only the blobs it lacks, and a warm rebuild sends and runs nothing."""

from __future__ import annotations

import asyncio
import io
import os
import sys
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from polybuild.builders import Node
from polybuild.errors import ImageNotFoundError, RegistryError, StepFailedError
from polybuild.image.content import ContentStore
from polybuild.image.digest import Digest
from polybuild.image.reference import Reference
from polybuild.imagebuild.pins import Pins
from polybuild.imagebuild.remote_driver import RemoteDriver, Transfer
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse
from polybuild.progress.events import VertexLog, VertexStarted
from polybuild.progress.writer import ProgressWriter, Recorder
from polybuild.remote.process import ProcessLink, spawn
from polybuild.runtime import Runtime
from tests.conftest import import_busybox, require_root

pytestmark = [pytest.mark.root]
AMD64 = parse("linux/amd64")


def layer_files(content: ContentStore, digest: Digest) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(content.get(digest)), mode="r:*") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def built_layer_member(runtime: Runtime, name: str) -> tarfile.TarInfo:
    """`name` in the layer of the last image the client stored that has it."""
    for digest in runtime.store.content:
        try:
            with tarfile.open(
                fileobj=io.BytesIO(runtime.store.content.get(digest)), mode="r:*"
            ) as tar:
                return tar.getmember(name)
        except (tarfile.TarError, KeyError):
            continue
    raise AssertionError(f"no layer has {name}")


async def unresolvable(ref: Reference) -> Digest:
    """A client that cannot reach any registry (tests send nothing to other networks)."""
    raise RegistryError(f"{ref}: no registry in this test")


def local_node(node_root: Path) -> Callable[[], Awaitable[ProcessLink]]:
    async def opener() -> ProcessLink:
        argv = [sys.executable, "-m", "polybuild", "dial-stdio"]
        return await spawn("local-node", argv, env={**os.environ, "POLYBUILD_ROOT": str(node_root)})

    return opener


def test_a_node_builds_and_the_client_gets_the_image(tmp_path: Path) -> None:
    require_root()
    node_root, client_root = tmp_path / "node-root", tmp_path / "client-root"
    import_busybox(node_root, ("amd64",))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /\nRUN uname -m > /arch\n")
    (ctx / "hello.txt").write_text("hi\n")
    os.utime(ctx / "hello.txt", (1_000_000_000, 1_000_000_000))
    (ctx / "ignored.bin").write_bytes(b"x" * 1000)
    (ctx / ".dockerignore").write_text("ignored.bin\n")

    client = Runtime(client_root)
    driver = RemoteDriver(
        Node("far", endpoint="ssh://far"), client, Pins(unresolvable), local_node(node_root)
    )
    request = make_request(ctx, platforms=["linux/amd64"], progress="quiet")

    def build() -> tuple[list[str], tuple[str, ...]]:
        recorder = Recorder()
        built = asyncio.run(driver.build(request, (AMD64,), ProgressWriter(recorder)))
        (image,) = built.images
        assert image.platform == AMD64
        layers = image.manifest.value.layers
        assert all(client.store.content.exists(layer.digest) for layer in layers)
        assert client.store.content.exists(image.manifest.digest)
        assert layer_files(client.store.content, layers[-2].digest) == {"hello.txt": b"hi\n"}
        assert layer_files(client.store.content, layers[-1].digest) == {"arch": b"x86_64\n"}
        names = [e.name for e in recorder.events if isinstance(e, VertexStarted)]
        return names, built.executed

    names, executed = build()
    copied = built_layer_member(client, "hello.txt")
    assert copied.mtime == 1_000_000_000  # COPY keeps it, on a node too
    sent = ("Dockerfile", "hello.txt", ".dockerignore")  # never ignored.bin
    assert driver.transfers == [Transfer(3, sum((ctx / name).stat().st_size for name in sent))]
    assert "[2/3] COPY hello.txt /" in names, names  # as buildx names it: no node
    assert not [n for n in names if n.startswith("[far ") and "connecting to" not in n], names
    assert len(executed) == 2
    names, executed = build()
    assert driver.transfers[1] == Transfer(0, 0)
    assert executed == ()


def test_a_base_image_only_the_client_has_is_streamed_to_the_node(tmp_path: Path) -> None:
    require_root()
    node_root, client_root = tmp_path / "node-root", tmp_path / "client-root"
    import_busybox(client_root, ("amd64",), name="only-here")
    client = Runtime(client_root)
    base = client.store.select("only-here", AMD64)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM only-here\nRUN uname -m > /arch\n")
    driver = RemoteDriver(
        Node("far", endpoint="ssh://far"), client, Pins(unresolvable), local_node(node_root)
    )
    request = make_request(ctx, platforms=["linux/amd64"], progress="quiet")
    for _ in range(2):  # the second time, the node has the base image's layers already
        built = asyncio.run(driver.build(request, (AMD64,), ProgressWriter(Recorder())))
        (image,) = built.images
        layers = image.manifest.value.layers
        assert [layer.digest for layer in layers[:-1]] == [
            layer.digest for layer in base.manifest.value.layers
        ]
        assert layer_files(client.store.content, layers[-1].digest) == {"arch": b"x86_64\n"}
    node = ContentStore(node_root / "content")
    assert all(node.path(layer.digest).is_file() for layer in base.manifest.value.layers)
    with pytest.raises(ImageNotFoundError):  # used on the node, never named there
        Runtime(node_root).store.resolve("only-here")


def test_a_step_failing_on_the_node_fails_as_it_would_here(tmp_path: Path) -> None:
    require_root()
    node_root = tmp_path / "node-root"
    import_busybox(node_root, ("amd64",))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nRUN echo doomed; exit 3\n")
    client = Runtime(tmp_path / "client-root")
    driver = RemoteDriver(
        Node("far", endpoint="ssh://far"), client, Pins(unresolvable), local_node(node_root)
    )
    request = make_request(ctx, platforms=["linux/amd64"], progress="quiet")
    recorder = Recorder()
    with pytest.raises(StepFailedError) as caught:  # the class, so the exit code, of a local one
        asyncio.run(driver.build(request, (AMD64,), ProgressWriter(recorder)))
    assert str(caught.value) == (
        'process "/bin/sh -c echo doomed; exit 3" did not complete successfully: exit code: 3'
    )  # BuildKit's words; the step's output is in its progress
    assert caught.value.excerpt.startswith("Dockerfile:2\n")  # the node's, as a local one
    assert (caught.value.node, caught.value.lines) == ("far", (2, 2))
    assert caught.value.hint is not None and "node far " in caught.value.hint
    logs = b"".join(e.data for e in recorder.events if isinstance(e, VertexLog))
    assert b"doomed\n" in logs
