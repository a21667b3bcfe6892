"""The Python API: polybuild.build() as the README shows it."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

import polybuild
from polybuild.errors import DockerfileError
from tests.conftest import import_busybox, require_platforms, require_root, require_tool

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms


def test_build_api_writes_an_oci_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_root()
    require_tool("runc")
    require_platforms("linux/amd64", "linux/arm64")
    root = tmp_path / "root"
    import_busybox(root, ("amd64", "arm64"))
    monkeypatch.setenv("POLYBUILD_ROOT", str(root))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nARG VERSION\nRUN echo $VERSION > /version\n")
    out = tmp_path / "app.tar"
    result = polybuild.build(
        ctx,
        platforms=["linux/amd64", "linux/arm64"],
        tags=["app:1"],
        outputs=[f"type=oci,dest={out}"],
        build_args={"VERSION": "1.0"},
        load=True,
    )
    assert result.index is not None and str(result.index.digest).startswith("sha256:")
    assert [str(i.platform) for i in result.images] == ["linux/amd64", "linux/arm64"]  # type: ignore[attr-defined]
    with tarfile.open(out) as tar:
        assert "index.json" in tar.getnames()
    from polybuild.image import ImageStore

    assert ImageStore(root).resolve("app:1").target.digest == result.index.digest
    (ctx / "Dockerfile").write_text("FROM busybox\nRUNN x\n")
    with pytest.raises(DockerfileError, match="Dockerfile:2"):
        polybuild.build(ctx)
