"""The after-build lines saying which node built which platform, natively or under QEMU."""

from __future__ import annotations

from polybuild.imagebuild.driver import Planned
from polybuild.imagebuild.node_report import node_report
from polybuild.platforms import parse
from polybuild.progress.events import Event, VertexCompleted, VertexStarted
from polybuild.testing.driver import FakeDriver

AMD64, ARM64, ARMV7 = parse("linux/amd64"), parse("linux/arm64"), parse("linux/arm/v7")


def test_each_node_and_platform_native_or_emulated() -> None:
    here = FakeDriver(label="this machine")
    amd = FakeDriver(label="node-amd64 (ssh://a)", vertex_prefix="node-amd64/")
    arm = FakeDriver(label="node-arm64 (ssh://b)", vertex_prefix="node-arm64/")
    planned = [Planned(here, (ARMV7,)), Planned(amd, (AMD64,)), Planned(arm, (ARM64,))]
    events: list[Event] = [
        VertexStarted("node-amd64/sha256:1", "[node-amd64 linux/amd64] RUN x", 1.0, AMD64),
        VertexCompleted("node-amd64/sha256:1", 2.0),
        VertexStarted("node-arm64/sha256:1", "[node-arm64 ...] RUN x", 1.0, ARM64, True),
        VertexCompleted("node-arm64/sha256:1", 13.5),
        VertexStarted("node-arm64/sha256:2", "[node-arm64 ...] RUN y", 1.0, ARM64, True),
        VertexCompleted("node-arm64/sha256:2", 1.0, cached=True),
        VertexStarted("sha256:3", "[linux/arm/v7 stage-0 2/2] RUN x", 3.0, ARMV7, True),
        VertexCompleted("sha256:3", 3.0, cached=True),
    ]
    assert node_report(planned, events).splitlines() == [
        "Built on:",
        "  this machine          linux/arm/v7  emulated (0 steps ran, 0.0s under QEMU)",
        "  node-amd64 (ssh://a)  linux/amd64  native",
        "  node-arm64 (ssh://b)  linux/arm64  emulated (1 step ran, 12.5s under QEMU)",
    ]


def test_nothing_to_say_when_every_node_is_this_machine() -> None:
    here = FakeDriver(label="this machine")
    events: list[Event] = [VertexStarted("sha256:1", "RUN x", 1.0, ARM64, True)]
    assert node_report([Planned(here, (ARM64,))], events) == ""
