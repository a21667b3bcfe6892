"""A build on a builder whose ssh node cannot be reached fails at once, naming the node and
its endpoint, and writes no output (ssh to a closed port on loopback; no root)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_tool, run_cli


@pytest.mark.parametrize("pinned", [(), ("--platform", "linux/amd64")])
def test_an_unreachable_node_fails_the_build_naming_it(
    tmp_path: Path, pinned: tuple[str, ...]
) -> None:
    require_tool("ssh")
    root, ctx, out = tmp_path / "root", tmp_path / "ctx", tmp_path / "out.tar"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM scratch\nCOPY Dockerfile /\n")
    endpoint = "ssh://root@127.0.0.1:1"
    created = run_cli(root, "create", "--name", "gone", *pinned, endpoint)
    assert created.returncode == 0, created.stderr
    built = run_cli(root, "build", "--builder", "gone", "--platform", "linux/amd64",
                    "-o", f"type=oci,dest={out}", str(ctx), timeout=60)  # fmt: skip
    assert built.returncode == 1, built.stderr
    assert f"ERROR: node gone0 ({endpoint}): " in built.stderr
    assert "Connection refused" in built.stderr
    assert not out.exists()
