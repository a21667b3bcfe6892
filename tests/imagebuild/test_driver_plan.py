"""Planning platforms onto builder nodes and merging what each node built (no root)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from polybuild.builders import Builder, Detected, Node
from polybuild.errors import ExecutionError, NodeUnreachableError
from polybuild.image.content import ContentStore
from polybuild.image.platform_image import PlatformImage
from polybuild.image.select import load_selected
from polybuild.image.testing import write_image
from polybuild.imagebuild.driver import (
    Driver,
    NodeBuild,
    Planned,
    build_on_nodes,
    driver_for,
    plan,
)
from polybuild.imagebuild.request import BuildRequest, make_request
from polybuild.platforms import Platform, parse
from polybuild.progress.writer import NullProgress, ProgressWriter
from polybuild.testing.driver import FakeDriver

AMD64, ARM64, ARMV7 = parse("linux/amd64"), parse("linux/arm64"), parse("linux/arm/v7")


def request(tmp_path: Path, *platforms: Platform) -> BuildRequest:
    return make_request(tmp_path, platforms=platforms)


def images(content: ContentStore, *platforms: Platform) -> dict[Platform, PlatformImage]:
    found = {}
    for platform in platforms:
        selected = load_selected(content, write_image(content, platform))
        found[platform] = PlatformImage(platform, selected.manifest, selected.config)
    return found


def plan_now(
    wanted: BuildRequest,
    builder: Builder,
    drivers: object,
    warn: Callable[[str], None] | None = None,
) -> list[Planned]:
    return asyncio.run(plan(wanted, builder, drivers, warn))  # type: ignore[arg-type]


def by_node(drivers: dict[str, Driver]) -> object:
    return lambda node: drivers[node.name]


def test_pinned_platforms_win_then_detected_native_ones(tmp_path: Path) -> None:
    amd, arm = FakeDriver([AMD64]), FakeDriver([ARM64])
    builder = Builder("b", nodes=(Node("amd"), Node("arm", platforms=(ARMV7,))))
    planned = plan_now(
        request(tmp_path, AMD64, ARM64, ARMV7),
        builder,
        by_node({"amd": amd, "arm": arm}),  # type: ignore[arg-type]
    )
    assert [(p.driver, p.platforms) for p in planned] == [(amd, (AMD64,)), (arm, (ARM64, ARMV7))]


def test_nodes_sharing_a_driver_build_their_platforms_together(tmp_path: Path) -> None:
    local = FakeDriver([AMD64])
    builder = Builder("b", nodes=(Node("n0", platforms=(ARM64,)), Node("n1")))
    planned = plan_now(request(tmp_path, AMD64, ARM64), builder, lambda node: local)
    assert [(p.driver, p.platforms) for p in planned] == [(local, (AMD64, ARM64))]


def test_a_platform_no_node_runs_goes_to_the_first_node(tmp_path: Path) -> None:
    first, second = FakeDriver([AMD64]), FakeDriver([ARM64])
    builder = Builder("b", nodes=(Node("first"), Node("second")))
    planned = plan_now(
        request(tmp_path, parse("linux/s390x")),
        builder,
        by_node({"first": first, "second": second}),  # type: ignore[arg-type]
    )
    assert [(p.driver, p.platforms) for p in planned] == [(first, (parse("linux/s390x"),))]


def test_ssh_nodes_get_the_remote_driver_made_once_per_node(tmp_path: Path) -> None:
    local, far = FakeDriver([AMD64]), FakeDriver([ARM64])
    made: list[str] = []

    def remote(node: Node) -> Driver:
        made.append(node.name)
        return far

    nodes = (Node("here"), Node("far", endpoint="ssh://build@arm-host"))
    planned = plan_now(request(tmp_path, AMD64, ARM64), Builder("b", nodes=nodes),
                   driver_for(local, remote))  # fmt: skip
    assert [(p.driver, p.platforms) for p in planned] == [(local, (AMD64,)), (far, (ARM64,))]
    assert made == ["far"]


def test_images_from_several_nodes_come_back_in_request_order(tmp_path: Path) -> None:
    content = ContentStore(tmp_path / "blobs")
    canned = images(content, AMD64, ARM64, ARMV7)
    amd = FakeDriver([AMD64], canned, executed=["sha256:a"])
    arm = FakeDriver([ARM64], canned, executed=["sha256:b"])
    builder = Builder("b", nodes=(Node("amd"), Node("arm")))
    wanted = request(tmp_path, ARMV7, AMD64, ARM64)
    planned = plan_now(wanted, builder, by_node({"amd": amd, "arm": arm}))  # type: ignore[arg-type]
    built = asyncio.run(build_on_nodes(wanted, planned, ProgressWriter(NullProgress())))
    assert [image.platform for image in built.images] == [ARMV7, AMD64, ARM64]
    assert amd.builds == [(AMD64,)] and arm.builds == [(ARMV7, ARM64)]
    assert sorted(built.executed) == ["sha256:a", "sha256:b"]


def test_one_node_failing_raises_its_own_error(tmp_path: Path) -> None:
    class Failing(FakeDriver):
        async def build(
            self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
        ) -> NodeBuild:
            raise ExecutionError("RUN make: exit code: 2")

    content = ContentStore(tmp_path / "blobs")
    ok = FakeDriver([AMD64], images(content, AMD64))
    builder = Builder("b", nodes=(Node("ok"), Node("bad")))
    wanted = request(tmp_path, AMD64, ARM64)
    planned = plan_now(wanted, builder, by_node({"ok": ok, "bad": Failing([ARM64])}))  # type: ignore[arg-type]
    with pytest.raises(ExecutionError, match="exit code: 2"):
        asyncio.run(build_on_nodes(wanted, planned, ProgressWriter(NullProgress())))


def test_a_native_node_beats_an_earlier_one_that_emulates(tmp_path: Path) -> None:
    s390x = parse("linux/s390x")
    emulating = FakeDriver([AMD64], emulated=[ARM64, s390x])
    native = FakeDriver([ARM64])
    builder = Builder("b", nodes=(Node("emulating"), Node("native")))
    drivers = by_node({"emulating": emulating, "native": native})
    planned = plan_now(request(tmp_path, ARM64, s390x), builder, drivers)
    # arm64 where it is native; s390x emulated on the only node that runs it at all
    assert [(p.driver, p.platforms) for p in planned] == [(emulating, (s390x,)), (native, (ARM64,))]


def test_nodes_are_not_probed_when_every_platform_is_pinned(tmp_path: Path) -> None:
    amd, arm = FakeDriver([AMD64]), FakeDriver([ARM64])
    builder = Builder("b", nodes=(Node("amd", platforms=(AMD64,)), Node("arm", platforms=(ARM64,))))
    planned = plan_now(request(tmp_path, AMD64, ARM64), builder, by_node({"amd": amd, "arm": arm}))
    assert [(p.driver, p.platforms) for p in planned] == [(amd, (AMD64,)), (arm, (ARM64,))]
    assert amd.probes == arm.probes == 0


def test_a_node_that_cannot_be_probed_runs_what_no_other_node_runs(tmp_path: Path) -> None:
    class Down(FakeDriver):
        async def detect(self) -> Detected:
            raise NodeUnreachableError("down (ssh://down)", "ssh: connect: Connection refused")

    down, up = Down([ARM64]), FakeDriver([AMD64], emulated=[ARM64])
    builder = Builder("b", nodes=(Node("down"), Node("up")))
    warnings: list[str] = []
    drivers = by_node({"down": down, "up": up})
    s390x = parse("linux/s390x")
    planned = plan_now(request(tmp_path, ARM64, s390x), builder, drivers, warnings.append)
    # arm64 emulated on the node that answers; s390x, which no node runs, to the first node
    assert [(p.driver, p.platforms) for p in planned] == [(down, (s390x,)), (up, (ARM64,))]
    assert warnings == [
        "node down (ssh://down): ssh: connect: Connection refused; its platforms go to other "
        "nodes if one runs them"
    ]
