"""`create`, `create --append`, `create --node`, `create --leave` as pure edits (buildx's rules)."""

from __future__ import annotations

import re

import pytest

from polybuild.builders import Builder, BuilderNotFoundError, Node, validate_name
from polybuild.builders.edit import (
    NodeChange,
    create,
    driver_name,
    leave,
    next_node_name,
    parse_driver_opts,
)
from polybuild.builders.node_options import NodeOptions
from polybuild.errors import UsageError
from polybuild.platforms import parse

AMD64, ARM64, ARMV7 = (parse(s) for s in ("linux/amd64", "linux/arm64", "linux/arm/v7"))


def summary(builder: Builder) -> list[tuple[str, str, list[str]]]:
    return [(n.name, n.endpoint, [str(p) for p in n.platforms]) for n in builder.nodes]


def test_new_builder_gets_node_zero_on_this_machine() -> None:
    builder = create(None, "multi", NodeChange(platforms=(AMD64,)))
    assert builder.driver == "local"
    assert summary(builder) == [("multi0", "local", ["linux/amd64"])]


def test_append_names_nodes_as_buildx_and_keeps_endpoint_and_opts() -> None:
    builder = create(None, "multi", NodeChange(platforms=(AMD64,)))
    change = NodeChange(
        endpoint="ssh://build@arm-host:2222",
        platforms=(ARM64, ARMV7),
        driver_opts=(("connect-timeout", "5"),),
    )
    builder = create(builder, "multi", change, append=True)
    assert summary(builder) == [
        ("multi0", "local", ["linux/amd64"]),
        ("multi1", "ssh://build@arm-host:2222", ["linux/arm64", "linux/arm/v7"]),
    ]
    assert builder.nodes[1].driver_opts == (("connect-timeout", "5"),)
    # the first free <builder>N: after multi1 leaves, the next node is multi1 again
    assert next_node_name(leave(builder, "multi1")) == "multi1"
    named = create(builder, "multi", NodeChange("Arm2", "ssh://arm2"), append=True)
    assert named.nodes[-1].name == "arm2"  # lower-cased, as buildx stores names


def test_append_needs_an_existing_builder() -> None:
    with pytest.raises(BuilderNotFoundError, match="no builder 'nosuch' to append"):
        create(None, "nosuch", NodeChange(endpoint="ssh://h"), append=True)


def test_existing_builder_needs_append_or_node() -> None:
    builder = create(None, "multi", NodeChange())
    with pytest.raises(UsageError, match="already exists"):
        create(builder, "multi", NodeChange(endpoint="ssh://h"))
    with pytest.raises(UsageError, match="has no node 'other'"):
        create(builder, "multi", NodeChange("other", "ssh://h"))


def test_node_flag_changes_only_what_is_given() -> None:
    builder = create(None, "multi", NodeChange())
    builder = create(
        builder, "multi", NodeChange(endpoint="ssh://a", platforms=(ARM64,)), append=True
    )
    changed = create(
        builder,
        "multi",
        NodeChange("multi1", driver_opts=(("polybuild", "/opt/pb/bin/polybuild"),)),
    )
    assert summary(changed) == summary(builder)
    assert changed.nodes[1].driver_opts == (("polybuild", "/opt/pb/bin/polybuild"),)
    moved = create(changed, "multi", NodeChange("multi1", "ssh://b"))
    assert summary(moved)[1] == ("multi1", "ssh://b", ["linux/arm64"])
    assert moved.nodes[1].driver_opts == (("polybuild", "/opt/pb/bin/polybuild"),)


def test_pinning_a_platform_unpins_it_elsewhere_and_endpoints_are_unique() -> None:
    builder = create(None, "multi", NodeChange(platforms=(AMD64, ARM64)))
    builder = create(
        builder, "multi", NodeChange(endpoint="ssh://arm", platforms=(ARM64,)), append=True
    )
    assert summary(builder) == [
        ("multi0", "local", ["linux/amd64"]),
        ("multi1", "ssh://arm", ["linux/arm64"]),
    ]
    with pytest.raises(UsageError, match="already has a node at ssh://arm"):
        create(builder, "multi", NodeChange(endpoint="ssh://arm"), append=True)
    with pytest.raises(UsageError, match="already has a node at local"):
        create(builder, "multi", NodeChange(), append=True)


def test_driver_rules() -> None:
    assert driver_name("docker-container") == "local"
    with pytest.raises(UsageError, match="unsupported driver 'kubernetes'"):
        driver_name("kubernetes")
    builder = create(None, "multi", NodeChange())
    with pytest.raises(UsageError, match="invalid BuildKit endpoint 'ssh://h'"):
        create(builder, "multi", NodeChange(endpoint="ssh://h"), driver="remote", append=True)
    with pytest.raises(UsageError, match="takes no driver options"):
        create(None, "x", NodeChange(driver_opts=(("a", "b"),)))


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        (("env.TZ", "UTC"), "--driver-opt: unknown option 'env.TZ'"),
        (("connect-timeout", "soon"), "--driver-opt connect-timeout=soon: expected seconds"),
        (("connect-timeout", "0"), "--driver-opt connect-timeout=0: expected seconds"),
        (("polybuild", "pb; rm -rf /"), "--driver-opt polybuild=pb; rm -rf /: expected a"),
        (("polybuild", "bin/pb"), "--driver-opt polybuild=bin/pb: expected a command name"),
        (("polybuild", "/opt/../pb"), "--driver-opt polybuild=/opt/../pb: expected a"),
    ],
)
def test_driver_opts_are_known_keys_with_good_values(pair: tuple[str, str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        create(None, "x", NodeChange(endpoint="ssh://h", driver_opts=(pair,)))
    assert str(caught.value).startswith(message)


def test_driver_opts_mean_what_they_say() -> None:
    pairs = (("connect-timeout", "2.5"), ("polybuild", "/opt/pb/bin/polybuild"))
    builder = create(None, "x", NodeChange(endpoint="ssh://h", driver_opts=pairs))
    assert builder.nodes[0].options == NodeOptions(2.5, "/opt/pb/bin/polybuild")
    assert create(None, "y", NodeChange(endpoint="ssh://h")).nodes[0].options == NodeOptions(
        20.0, "polybuild"
    )


def test_leave_removes_a_node_but_never_the_last() -> None:
    builder = Builder("multi", nodes=(Node("multi0"), Node("multi1", "ssh://h")))
    assert summary(leave(builder, "multi1")) == [("multi0", "local", [])]
    with pytest.raises(UsageError, match="has no node 'nosuch'"):
        leave(builder, "nosuch")
    with pytest.raises(UsageError, match="last node"):
        leave(leave(builder, "multi1"), "multi0")


def test_names_and_driver_opts() -> None:
    assert validate_name("My.Builder_1-x") == "my.builder_1-x"
    for bad in ("", "1abc", "-x", "a/b", "../x", "a b", ".hidden"):
        with pytest.raises(UsageError):
            validate_name(bad)
    with pytest.raises(UsageError, match="reserved"):
        create(None, "default", NodeChange())
    assert parse_driver_opts([]) is None
    assert parse_driver_opts(['a=1,"b=x,y"', "c="]) == (("a", "1"), ("b", "x,y"), ("c", ""))
    with pytest.raises(UsageError, match="expecting K=V"):
        parse_driver_opts(["novalue"])


def test_a_builder_mixes_polybuild_nodes_and_buildkit_daemons() -> None:
    builder = create(None, "mixed", NodeChange(platforms=(AMD64,)))
    opts = (("cacert", "/etc/bk/ca.pem"), ("cert", "/etc/bk/c.pem"), ("key", "/etc/bk/k.pem"))
    change = NodeChange("bk-arm", "tcp://buildkit-arm64:1234", (ARM64,), opts)
    builder = create(builder, "mixed", change, driver="remote", append=True)
    unix = NodeChange("bk-sock", "unix:///run/buildkit/buildkitd.sock")
    builder = create(builder, "mixed", unix, driver="remote", append=True)
    assert [(n.name, n.driver, n.endpoint) for n in builder.nodes] == [
        ("mixed0", "local", "local"),
        ("bk-arm", "remote", "tcp://buildkit-arm64:1234"),
        ("bk-sock", "remote", "unix:///run/buildkit/buildkitd.sock"),
    ]
    assert builder.nodes[1].is_buildkit and not builder.nodes[1].is_local
    assert builder.nodes[1].buildkit.tls and builder.nodes[1].buildkit.key == "/etc/bk/k.pem"
    assert Builder.from_json(builder.to_json(), "test") == builder
    # A new builder of BuildKit daemons; its appended nodes are BuildKit daemons too.
    remote = create(None, "bk", NodeChange(endpoint="tcp://10.0.0.1:1234"), driver="remote")
    remote = create(remote, "bk", NodeChange(endpoint="tcp://10.0.0.2:1234"), append=True)
    assert [(n.driver, n.endpoint) for n in remote.nodes] == [
        ("remote", "tcp://10.0.0.1:1234"),
        ("remote", "tcp://10.0.0.2:1234"),
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (NodeChange(), "the remote driver needs the BuildKit daemon's address"),
        (NodeChange(endpoint="tcp://host"), "a tcp address needs a port"),
        (NodeChange(endpoint="unix://relative.sock"), "a unix socket is an absolute path"),
        (NodeChange(endpoint="unix:///run/../etc/x"), "a unix socket is an absolute path"),
        (NodeChange(endpoint="tcp://h:1", driver_opts=(("image", "x"),)), "unknown option"),
        (NodeChange(endpoint="tcp://h:1", driver_opts=(("cert", "/c"),)), "cert and key go"),
        (NodeChange(endpoint="tcp://h:1", driver_opts=(("cacert", "ca.pem"),)), "absolute"),
        (
            NodeChange(endpoint="unix:///s", driver_opts=(("cacert", "/ca.pem"),)),
            "TLS options are for tcp://",
        ),
    ],
)
def test_buildkit_endpoints_and_options_are_checked(change: NodeChange, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        create(None, "bk", change, driver="remote")


def test_a_nodes_driver_cannot_change_and_tcp_needs_the_remote_driver() -> None:
    builder = create(None, "b", NodeChange(endpoint="tcp://h:1234"), driver="remote")
    with pytest.raises(UsageError, match="has driver remote, not local"):
        create(builder, "b", NodeChange("b0", "ssh://h"), driver="local")
    with pytest.raises(UsageError, match="--driver remote tcp://HOST:PORT for a BuildKit"):
        try:
            create(None, "c", NodeChange(endpoint="tcp://h:1234"))
        except UsageError as exc:
            raise UsageError(f"{exc} {exc.hint}") from exc
