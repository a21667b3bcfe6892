"""A node keeps a client's context between builds (a `polybuild dial-stdio` child with a
data root of its own, no ssh): an unchanged context is not written again, and a file whose
content (same size), mode or mtime changed reaches the next build's COPY layer."""

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
from polybuild.errors import RegistryError
from polybuild.image.digest import Digest
from polybuild.image.reference import Reference
from polybuild.imagebuild.pins import Pins
from polybuild.imagebuild.remote_driver import RemoteDriver
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse
from polybuild.progress.writer import ProgressWriter, Recorder
from polybuild.remote.context_mirrors import CONTEXTS_DIR
from polybuild.remote.process import ProcessLink, spawn
from polybuild.runtime import Runtime
from tests.conftest import import_busybox, require_root

pytestmark = [pytest.mark.root]
AMD64 = parse("linux/amd64")
T1, T2 = 1_000_000_000, 1_100_000_000


async def unresolvable(ref: Reference) -> Digest:
    raise RegistryError(f"{ref}: no registry in this test")


def local_node(node_root: Path) -> Callable[[], Awaitable[ProcessLink]]:
    async def opener() -> ProcessLink:
        argv = [sys.executable, "-m", "polybuild", "dial-stdio"]
        return await spawn("local-node", argv, env={**os.environ, "POLYBUILD_ROOT": str(node_root)})

    return opener


def test_a_changed_file_reaches_the_build_and_an_unchanged_context_is_not_rewritten(
    tmp_path: Path,
) -> None:
    require_root()
    node_root, client_root, ctx = tmp_path / "node-root", tmp_path / "client-root", tmp_path / "ctx"
    import_busybox(node_root, ("amd64",))
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY hello.txt /\n")
    hello = ctx / "hello.txt"
    hello.write_bytes(b"hi\n")
    os.utime(hello, (T1, T1))
    client = Runtime(client_root)
    driver = RemoteDriver(
        Node("far", endpoint="ssh://far"), client, Pins(unresolvable), local_node(node_root)
    )
    request = make_request(ctx, platforms=["linux/amd64"], progress="quiet")

    def build() -> tuple[bytes, int, int]:
        built = asyncio.run(driver.build(request, (AMD64,), ProgressWriter(Recorder())))
        (image,) = built.images
        layer = image.manifest.value.layers[-1].digest
        data = client.store.content.get(layer)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            member = tar.getmember("hello.txt")
            content = tar.extractfile(member).read()  # type: ignore[union-attr]
            return content, member.mode, int(member.mtime)

    def node_copy() -> os.stat_result:
        (tree,) = (node_root / CONTEXTS_DIR).glob("*/0/tree")
        return os.lstat(tree / "hello.txt")

    assert build() == (b"hi\n", 0o644, T1)
    first = node_copy()
    assert build() == (b"hi\n", 0o644, T1)
    again = node_copy()
    assert (again.st_ino, again.st_ctime_ns) == (first.st_ino, first.st_ctime_ns)

    hello.write_bytes(b"HI\n")  # the same size
    os.chmod(hello, 0o755)
    os.utime(hello, (T2, T2))
    assert build() == (b"HI\n", 0o755, T2)
    assert driver.transfers[-1].files == 1

    hello.write_bytes(b"hi\n")
    os.chmod(hello, 0o644)
    os.utime(hello, (T1, T1))
    assert build() == (b"hi\n", 0o644, T1)
    assert driver.transfers[-1].files == 0  # the node's cache had it
