"""Which image a node's FROM is: the client decides, once per build, for every node.

Over the local transport (a `polybuild dial-stdio` child with a data root of its own): the
client's own image wins over an image of the same name in the node's store; without one,
the node uses the digest the client pinned the reference to (from its store, or pulled by
digest from a real registry); a reference the client cannot resolve is left to the node.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest

from polybuild.builders import Node
from polybuild.image import ImageStore
from polybuild.image.config import ContainerConfig
from polybuild.image.digest import Digest
from polybuild.image.platform_image import PlatformImage
from polybuild.image.reference import Reference
from polybuild.imagebuild.pins import Pins
from polybuild.imagebuild.remote_driver import RemoteDriver
from polybuild.imagebuild.request import make_request
from polybuild.importer import import_rootfs
from polybuild.platforms import parse
from polybuild.progress.writer import ProgressWriter, Recorder
from polybuild.runtime import Runtime
from polybuild.testing.busybox import make_rootfs_tar
from tests.conftest import require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (a fixture)
from tests.remote.test_remote_driver import local_node, unresolvable

pytestmark = [pytest.mark.root]
AMD64 = parse("linux/amd64")


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rootfs_tar("amd64", tmp_path_factory.mktemp("rootfs") / "amd64.tar")


def import_labelled(root: Path, tarball: Path, name: str, label: str) -> Digest:
    """busybox for amd64 as `name`, told apart by the label `which=label`; its index digest."""
    with tarball.open("rb") as f:
        import_rootfs(
            ImageStore(root), f, name, AMD64, changes=ContainerConfig(labels={"which": label})
        )
    return ImageStore(root).resolve(name).target.digest


def build_on_node(
    client: Runtime, node_root: Path, ctx: Path, pins: Pins, *, pull: bool = False
) -> PlatformImage:
    node = Node("far", endpoint="ssh://far")
    driver = RemoteDriver(node, client, pins, opener=local_node(node_root))
    request = make_request(ctx, platforms=["linux/amd64"], progress="quiet", pull=pull)
    built = asyncio.run(driver.build(request, (AMD64,), ProgressWriter(Recorder())))
    (image,) = built.images
    return image


def context(tmp_path: Path, base: str) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(parents=True)
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN echo built > /built\n")
    return ctx


def test_the_clients_image_wins_over_the_nodes_of_the_same_name(
    tmp_path: Path, rootfs_tar: Path
) -> None:
    require_root()
    client_root, node_root = tmp_path / "client", tmp_path / "node"
    import_labelled(node_root, rootfs_tar, "busybox", "stale on the node")
    import_labelled(client_root, rootfs_tar, "busybox", "the client's")
    image = build_on_node(Runtime(client_root), node_root, context(tmp_path, "busybox"),
                          Pins(unresolvable))  # fmt: skip
    assert image.config.value.config.labels["which"] == "the client's"


def test_without_the_clients_image_the_node_uses_the_pinned_digest(
    tmp_path: Path, rootfs_tar: Path
) -> None:
    require_root()
    client_root, node_root = tmp_path / "client", tmp_path / "node"
    import_labelled(node_root, rootfs_tar, "busybox", "stale on the node")
    pinned = import_labelled(node_root, rootfs_tar, "other-name", "pinned")
    asked: list[str] = []

    async def resolve(ref: Reference) -> Digest:
        asked.append(str(ref))
        return pinned

    pins = Pins(resolve)
    image = build_on_node(Runtime(client_root), node_root, context(tmp_path, "busybox"), pins)
    assert image.config.value.config.labels["which"] == "pinned"
    assert asked == ["docker.io/library/busybox:latest"]


def test_a_reference_the_client_cannot_resolve_is_the_nodes_to_resolve(
    tmp_path: Path, rootfs_tar: Path
) -> None:
    require_root()
    client_root, node_root = tmp_path / "client", tmp_path / "node"
    import_labelled(node_root, rootfs_tar, "busybox", "the node's")
    warnings: list[str] = []
    pins = Pins(unresolvable, warn=warnings.append)
    image = build_on_node(Runtime(client_root), node_root, context(tmp_path, "busybox"), pins)
    assert image.config.value.config.labels["which"] == "the node's"
    assert warnings == [
        "FROM docker.io/library/busybox:latest: not resolved on this machine, so each node "
        "resolves it itself: docker.io/library/busybox:latest: no registry in this test"
    ]


def test_the_node_pulls_the_pinned_digest_not_the_tag(
    tmp_path: Path,
    rootfs_tar: Path,
    registry: Registry,  # noqa: F811
) -> None:
    """The tag moves after the client pinned it: the node still builds on the pinned bytes."""
    require_root()
    pusher, client_root, node_root = tmp_path / "pusher", tmp_path / "client", tmp_path / "node"
    ref = f"{registry.host}/pins/busybox:1"
    first = import_labelled(pusher, rootfs_tar, ref, "first")
    assert run_cli(pusher, "push", ref).returncode == 0
    pins = Pins()
    pinned = asyncio.run(pins.pin(ref))
    assert pinned == f"{ref}@{first}"
    import_labelled(pusher, rootfs_tar, ref, "second")  # the tag moves on
    assert run_cli(pusher, "push", ref).returncode == 0
    image = build_on_node(Runtime(client_root), node_root, context(tmp_path, ref), pins)
    assert image.config.value.config.labels["which"] == "first"
    # and --pull asks the registry (through the client) for what the tag is now
    again = build_on_node(
        Runtime(client_root), node_root, context(tmp_path / "again", ref), Pins(), pull=True
    )
    assert again.config.value.config.labels["which"] == "second"


def test_every_caller_of_a_build_gets_one_resolution() -> None:
    calls = itertools.count()

    async def resolve(ref: Reference) -> Digest:
        next(calls)
        await asyncio.sleep(0.01)
        return Digest.parse("sha256:" + "a" * 64)

    async def main() -> list[str]:
        pins = Pins(resolve)
        many = [pins.pin("busybox"), pins.pin("busybox"), pins.pin("example.com/app:2")]
        return list(await asyncio.gather(*many, pins.pin("busybox")))

    digest = "sha256:" + "a" * 64
    assert asyncio.run(main()) == [
        f"docker.io/library/busybox:latest@{digest}",
        f"docker.io/library/busybox:latest@{digest}",
        f"example.com/app:2@{digest}",
        f"docker.io/library/busybox:latest@{digest}",
    ]
    assert next(calls) == 2  # busybox once, example.com/app once
    pinned = f"busybox@{digest}"
    assert asyncio.run(Pins(unresolvable).pin(pinned)) == f"docker.io/library/busybox@{digest}"


def test_a_pinned_answer_for_another_image_or_without_a_digest_is_refused() -> None:
    from polybuild.errors import RemoteError
    from polybuild.imagebuild.remote_node import _pinned

    digest = "sha256:" + "b" * 64
    assert str(_pinned("busybox", f"docker.io/library/busybox:latest@{digest}").digest) == digest
    for answer in (f"docker.io/library/evil@{digest}", "docker.io/library/busybox:latest",
                   "not a reference!"):  # fmt: skip
        with pytest.raises(RemoteError):
            _pinned("busybox", answer)
