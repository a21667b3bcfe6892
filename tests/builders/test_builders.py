"""Builders: saved nodes, the builder in use, and buildx's platform -> node resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.builders import (
    DEFAULT_BUILDER,
    Builder,
    BuilderNotFoundError,
    BuilderStore,
    Node,
    resolve_nodes,
    with_node,
)
from polybuild.errors import UsageError
from polybuild.platforms import Platform, parse
from tests.conftest import run_cli

AMD64, ARM64, ARMV7, S390X = (
    parse(s) for s in ("linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x")
)


def detected_by(table: dict[str, tuple[Platform, ...]]):  # type: ignore[no-untyped-def]
    return lambda node: table.get(node.name, ())


def test_configured_platforms_win_then_lenient_detection_then_first_node() -> None:
    nodes = [Node("amd", platforms=(AMD64,)), Node("arm", platforms=(ARM64,))]
    detected = detected_by({"amd": (AMD64, S390X), "arm": (ARM64,)})
    got = resolve_nodes([AMD64, ARM64, ARMV7, S390X, parse("linux/riscv64")], nodes, detected)
    assert [(a.node.name, [str(p) for p in a.platforms]) for a in got] == [
        ("amd", ["linux/amd64", "linux/s390x", "linux/riscv64"]),
        ("arm", ["linux/arm64", "linux/arm/v7"]),  # arm64 runs arm/v7 (lenient)
    ]


def test_strict_configured_match_beats_an_earlier_detected_one() -> None:
    nodes = [Node("a"), Node("b", platforms=(ARM64,))]
    got = resolve_nodes([ARM64], nodes, detected_by({"a": (AMD64, ARM64)}))
    assert [a.node.name for a in got] == ["b"]


def test_store_create_append_use_remove(tmp_path: Path) -> None:
    store = BuilderStore(tmp_path)
    assert [b.name for b in store.list()] == [DEFAULT_BUILDER]
    builder = Builder("mine", nodes=(Node("mine0", platforms=(AMD64,)),))
    store.save(with_node(builder, Node("mine1", platforms=(ARM64,))))
    store.use("mine")
    assert store.current().name == "mine"
    assert [n.platforms for n in store.get("mine").nodes] == [(AMD64,), (ARM64,)]
    store.remove("mine")
    assert store.current().name == DEFAULT_BUILDER
    with pytest.raises(BuilderNotFoundError):
        store.get("mine")
    with pytest.raises(UsageError):
        store.save(Builder("../escape"))
    with pytest.raises(UsageError):
        store.remove(DEFAULT_BUILDER)


@pytest.mark.root
def test_cli(tmp_path: Path) -> None:
    root = tmp_path / "root"
    proc = run_cli(root, "create", "--name", "multi", "--platform", "linux/amd64", "--use")
    assert proc.returncode == 0, proc.stderr
    assert (
        run_cli(
            root, "create", "--name", "multi", "--append", "--platform", "linux/arm64"
        ).returncode
        == 0
    )
    listing = run_cli(root, "ls").stdout
    assert "multi *" in listing and "multi0" in listing and "multi1" in listing
    shown = run_cli(root, "inspect", "--bootstrap").stdout
    assert "Name:   multi" in shown and "linux/amd64*" in shown and "linux/arm64*" in shown
    proc = run_cli(root, "create", "ssh://user@elsewhere")
    assert proc.returncode == 2 and "not supported yet" in proc.stderr
    proc = run_cli(root, "build", "--builder", "nosuch", str(tmp_path))
    assert proc.returncode != 0 and "no builder 'nosuch' found" in proc.stderr
    assert run_cli(root, "rm", "multi").returncode == 0
    assert "multi" not in run_cli(root, "ls").stdout
