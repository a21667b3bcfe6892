"""Node statuses (asked concurrently, failures kept with their reason) and how ls and inspect
print them, with fake nodes: no connection, no root."""

from __future__ import annotations

import asyncio
import json
import time

from polybuild.builders import Builder, Node, NodeStatus, platforms_in_groups
from polybuild.cli.builders_show import builder_json, inspect_text, ls_errors, ls_table, truncated
from polybuild.cli.builders_status import node_statuses
from polybuild.errors import NodeUnreachableError
from polybuild.platforms import parse

AMD64, ARM64 = parse("linux/amd64"), parse("linux/arm64")
HERE = NodeStatus("running", "0.1.0", ("linux/amd64", "linux/arm64"))
BUILDER = Builder(
    "multi",
    nodes=(
        Node("multi0", platforms=(AMD64,)),
        Node("multi1", "ssh://build@arm", (ARM64,), (("env.TZ", "UTC"),)),
        Node("multi2", "ssh://build@dead"),
    ),
)


async def fake_bootstrap(node: Node, timeout: float) -> NodeStatus:
    endpoint = node.endpoint
    await asyncio.sleep(0.2)
    if endpoint.endswith("dead"):
        raise NodeUnreachableError(endpoint, "ssh: connect to host dead port 22: refused")
    return NodeStatus("running", "0.2.0", ("linux/aarch64", "linux/arm/v7"))


def test_platforms_in_groups_marks_pinned_and_normalises_detected() -> None:
    assert platforms_in_groups([ARM64], ["linux/aarch64", "linux/arm/v7", "weird"]) == [
        "linux/arm64*",
        "linux/arm/v7",
        "weird",
    ]


def test_without_connecting_remote_nodes_are_inactive_and_nothing_is_asked() -> None:
    async def must_not_run(node: Node, timeout: float) -> NodeStatus:
        raise AssertionError("connected")

    statuses = node_statuses(BUILDER, connect=False, bootstrap=must_not_run, local=lambda: HERE)
    assert [s.status for _, s in statuses.nodes] == ["running", "inactive", "inactive"]
    assert statuses.failures == []


def test_bootstrap_asks_every_node_at_once_and_keeps_failures() -> None:
    started = time.monotonic()
    statuses = node_statuses(BUILDER, connect=True, bootstrap=fake_bootstrap, local=lambda: HERE)
    assert time.monotonic() - started < 0.35  # two nodes of 0.2 s each, asked together
    assert [s.status for _, s in statuses.nodes] == ["running", "running", "error"]
    assert statuses.nodes[1][1].version == "0.2.0"
    assert "refused" in statuses.nodes[2][1].error
    assert [(n.name, type(e)) for n, e in statuses.failures] == [("multi2", NodeUnreachableError)]


def test_a_node_that_hangs_is_given_up_after_the_timeout() -> None:
    async def hangs(node: Node, timeout: float) -> NodeStatus:
        await asyncio.sleep(3600)
        raise AssertionError

    builder = Builder("b", nodes=(Node("b0", "ssh://h"),))
    started = time.monotonic()
    statuses = node_statuses(builder, connect=True, timeout=0.1, bootstrap=hangs)
    assert time.monotonic() - started < 5
    assert "no answer within 0.1 s" in statuses.nodes[0][1].error


def test_ls_table_as_buildx() -> None:
    statuses = [s for _, s in node_statuses(
        BUILDER, connect=True, bootstrap=fake_bootstrap, local=lambda: HERE
    ).nodes]  # fmt: skip
    # buildx's header and Go's tabwriter: empty cells padded, so rows keep trailing blanks
    assert ls_table([(BUILDER, statuses)], current="multi") == (
        "NAME/NODE    DRIVER/ENDPOINT        STATUS    BUILDKIT   PLATFORMS\n"
        "multi*       local                                       \n"
        " \\_ multi0    \\_ local              running   0.1.0      linux/amd64*, linux/arm64\n"
        " \\_ multi1    \\_ ssh://build@arm    running   0.2.0      linux/arm64*, linux/arm/v7\n"
        " \\_ multi2    \\_ ssh://build@dead   error                \n"
    )
    assert ls_errors([(BUILDER, statuses)]) == [
        "Failed to get status for multi (multi2): node ssh://build@dead: "
        "ssh: connect to host dead port 22: refused"
    ]


def test_ls_json_has_buildx_shape() -> None:
    statuses = [s for _, s in node_statuses(BUILDER, connect=False, local=lambda: HERE).nodes]
    line = builder_json(BUILDER, statuses, current=True)
    assert "\n" not in line
    document = json.loads(line)
    assert list(document) == ["Current", "Driver", "Dynamic", "Name", "Nodes"]
    assert document["Current"] is True and document["Dynamic"] is False
    assert document["Nodes"] == [
        {
            "Name": "multi0",
            "Endpoint": "local",
            "Status": "running",
            "Version": "0.1.0",
            "Platforms": ["linux/amd64", "linux/arm64"],
        },
        {
            "Name": "multi1",
            "Endpoint": "ssh://build@arm",
            "DriverOpts": {"env.TZ": "UTC"},
            "Status": "inactive",
            "Platforms": ["linux/arm64"],
        },
        {"Name": "multi2", "Endpoint": "ssh://build@dead", "Status": "inactive"},
    ]


def test_inspect_text_as_buildx() -> None:
    statuses = [s for _, s in node_statuses(
        BUILDER, connect=True, bootstrap=fake_bootstrap, local=lambda: HERE
    ).nodes]  # fmt: skip
    assert inspect_text(BUILDER, statuses) == (
        "Name:   multi\n"
        "Driver: local\n"
        "\n"
        "Nodes:\n"
        "Name:              multi0\n"
        "Endpoint:          local\n"
        "Status:            running\n"
        "Polybuild version: 0.1.0\n"
        "Platforms:         linux/amd64*, linux/arm64\n"
        "\n"
        "Name:              multi1\n"
        "Endpoint:          ssh://build@arm\n"
        'Driver Options:    env.TZ="UTC"\n'
        "Status:            running\n"
        "Polybuild version: 0.2.0\n"
        "Platforms:         linux/arm64*, linux/arm/v7\n"
        "\n"
        "Name:     multi2\n"
        "Endpoint: ssh://build@dead\n"
        "Error:    node ssh://build@dead: ssh: connect to host dead port 22: refused\n"
    )


def test_table_platforms_are_shortened_as_buildx_unless_no_trunc() -> None:
    detected = [
        "linux/amd64",
        "linux/amd64/v2",
        "linux/amd64/v3",
        "linux/amd64/v4",
        "linux/arm64",
        "linux/riscv64",
        "linux/ppc64le",
        "linux/s390x",
        "linux/386",
        "linux/arm/v7",
        "linux/arm/v6",
    ]
    platforms = platforms_in_groups([AMD64], detected)
    assert truncated(platforms) == (
        "linux/amd64* (+4), linux/arm64, linux/arm (+2), linux/ppc64le, (3 more)"
    )
    assert truncated(["linux/arm64*", "linux/arm/v7"]) == "linux/arm64*, linux/arm/v7"
    builder = Builder("b", nodes=(Node("b0", platforms=(AMD64,)),))
    status = [NodeStatus("running", "0.1.0", tuple(detected))]
    assert "(3 more)" in ls_table([(builder, status)], "b")
    assert (
        ls_table([(builder, status)], "b", trunc=False)
        .splitlines()[2]
        .endswith(
            "linux/amd64*, linux/amd64/v2, linux/amd64/v3, linux/amd64/v4, linux/arm64, "
            "linux/riscv64, linux/ppc64le, linux/s390x, linux/386, linux/arm/v7, linux/arm/v6"
        )
    )
