"""Builders: saved nodes, the builder in use, and buildx's platform -> node resolution."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.builders import (
    DEFAULT_BUILDER,
    Builder,
    BuilderNotFoundError,
    BuilderStore,
    Detected,
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
    return lambda node: Detected(table.get(node.name, ()))


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


def test_native_then_emulated_then_the_first_node() -> None:
    nodes = [Node("a"), Node("b"), Node("c")]

    def detected(node: Node) -> Detected:
        return {
            "a": Detected((AMD64,), (ARM64, S390X)),
            "b": Detected((ARM64,)),
            "c": Detected((AMD64,), (S390X,)),
        }[node.name]

    got = resolve_nodes([ARM64, S390X, ARMV7, parse("linux/riscv64")], nodes, detected)
    assert [(a.node.name, [str(p) for p in a.platforms]) for a in got] == [
        ("a", ["linux/s390x", "linux/riscv64"]),  # emulated on the first that emulates it
        ("b", ["linux/arm64", "linux/arm/v7"]),  # native (arm/v7 leniently) beats emulated
    ]


def test_store_create_append_use_remove(tmp_path: Path) -> None:
    store = BuilderStore(tmp_path)
    assert [b.name for b in store.list()] == [DEFAULT_BUILDER]
    builder = Builder("mine", nodes=(Node("mine0", platforms=(AMD64,)),))
    store.save(with_node(builder, Node("mine1", "ssh://u@arm", (ARM64,), (("k", "v"),))))
    assert [b.name for b in store.list()] == ["mine", DEFAULT_BUILDER]  # default last, as buildx
    store.use("mine")
    assert store.current().name == "mine"
    saved = store.get("MINE")  # found in any case, as buildx
    assert [(n.endpoint, n.platforms, n.driver_opts) for n in saved.nodes] == [
        ("local", (AMD64,), ()),
        ("ssh://u@arm", (ARM64,), (("k", "v"),)),
    ]
    store.remove("mine")
    assert store.current().name == DEFAULT_BUILDER
    with pytest.raises(BuilderNotFoundError):
        store.get("mine")
    with pytest.raises(UsageError):
        store.save(Builder("../escape"))
    with pytest.raises(UsageError):
        store.remove(DEFAULT_BUILDER)


def test_store_reads_files_of_older_versions(tmp_path: Path) -> None:
    (tmp_path / "builders").mkdir()
    (tmp_path / "builders" / "1old.json").write_text(
        '{"name": "1old", "driver": "local", "nodes": '
        '[{"name": "1old0", "endpoint": "local", "platforms": ["linux/arm64"]}]}'
    )
    old = BuilderStore(tmp_path).get("1old")
    assert old.nodes == (Node("1old0", "local", (ARM64,), ()),)


def test_unknown_builder_from_the_environment_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BuilderStore(tmp_path)
    store.save(Builder("mine", nodes=(Node("mine0"),)))
    monkeypatch.setenv("BUILDX_BUILDER", "nosuch")
    with pytest.raises(BuilderNotFoundError, match="no builder 'nosuch' found"):
        store.current()
    monkeypatch.setenv("BUILDX_BUILDER", "mine")
    assert store.current().name == "mine"
    monkeypatch.delenv("BUILDX_BUILDER")
    # a `current` file naming a builder removed by hand falls back to the default, as buildx
    (tmp_path / "builders" / "current").write_text("gone")
    assert store.current().name == DEFAULT_BUILDER
    store.use("mine")
    store.use(DEFAULT_BUILDER)
    assert store.current().name == DEFAULT_BUILDER


@pytest.mark.root
def test_build_with_an_unknown_builder_fails(tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    root = tmp_path / "root"
    proc = run_cli(root, "build", "--builder", "nosuch", str(tmp_path))
    assert proc.returncode != 0 and "no builder 'nosuch' found" in proc.stderr
    proc = run_cli(root, "build", str(tmp_path), env={"BUILDX_BUILDER": "nosuch"})
    assert proc.returncode != 0 and "no builder 'nosuch' found" in proc.stderr
