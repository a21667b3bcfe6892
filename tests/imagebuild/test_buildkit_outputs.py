"""What a BuildKit node is asked to export: `--push` is the daemon's (by digest, to every
repository named), and the layers come back to this machine only when an output needs them."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.imagebuild.buildkit_outputs import NodeOutputs, node_outputs
from polybuild.imagebuild.request import make_request


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"push": True, "tags": ["r.test/a:1", "r.test/b:2", "r.test/a:3"]},
         NodeOutputs(("r.test/a", "r.test/b"), False)),
        ({"outputs": ["type=registry,name=r.test/a:1"]}, NodeOutputs(("r.test/a",), True)),
        ({"outputs": ["type=registry,name=r.test/a:1,store=false"]},
         NodeOutputs(("r.test/a",), False)),
        ({"push": True, "load": True, "tags": ["r.test/a:1"]}, NodeOutputs(("r.test/a",), True)),
        ({"push": True, "tags": ["r.test/a:1"], "outputs": ["type=local,dest=out"]},
         NodeOutputs(("r.test/a",), True)),
        ({"outputs": ["type=registry,name=r.test/a:1,compression=zstd"]}, NodeOutputs((), True)),
        ({"outputs": ["type=oci,dest=o.tar"]}, NodeOutputs((), True)),
        ({}, NodeOutputs((), True)),
    ],
)  # fmt: skip
def test_node_outputs(flags: dict[str, object], expected: NodeOutputs, tmp_path: Path) -> None:
    assert node_outputs(make_request(tmp_path, **flags)) == expected  # type: ignore[arg-type]


def test_check_reproducible_keeps_the_layers_here(tmp_path: Path) -> None:
    request = make_request(
        tmp_path, push=True, tags=["r.test/a:1"], check_reproducible=True,
        build_args={"SOURCE_DATE_EPOCH": "0"},
    )  # fmt: skip
    assert node_outputs(request) == NodeOutputs(("r.test/a",), True)
