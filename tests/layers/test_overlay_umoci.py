"""Whiteouts from a real overlayfs upper dir, checked by an independent unpacker (umoci)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from polybuild.image import Layer
from polybuild.layers import (
    Compression,
    LayerFormat,
    LayerWriteError,
    UnpackMode,
    directory_layer,
    unpack_layer,
    upper_layer,
)
from tests.conftest import require_root, require_tool
from tests.layers.trees import overlay_mount, overlay_readonly, snapshot


def _base(root: Path) -> Path:
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "keep").write_text("kept\n")
    (root / "etc" / "delete-me").write_text("deleted by the step\n")
    (root / "etc" / "modify-me").write_text("before\n")
    (root / "replaced" / "old-sub").mkdir(parents=True)
    (root / "replaced" / "old-file").write_text("hidden by the new directory\n")
    (root / "replaced" / "old-sub" / "deep").write_text("also hidden\n")
    (root / "gone").mkdir()
    (root / "gone" / "inside").write_text("whole directory removed\n")
    return root


def _step(merged: Path) -> None:
    """What a RUN step does: delete a base file, replace a directory, create and modify."""
    subprocess.run(
        ["sh", "-c", "rm etc/delete-me && rm -rf replaced gone && mkdir replaced"],
        cwd=merged,
        check=True,
    )
    (merged / "replaced" / "new-file").write_text("fresh\n")
    (merged / "etc" / "modify-me").write_text("after\n")
    (merged / "added").mkdir()
    (merged / "added" / "file").write_text("added\n")


def _blob(layout: Path, data: bytes) -> tuple[str, int]:
    import hashlib

    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def _oci_layout(layout: Path, layers: list[tuple[Layer, bytes]]) -> None:
    """A minimal OCI image layout with one image tagged `test`, written by hand."""
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for layer, data in layers:
        assert _blob(layout, data) == (str(layer.blob), layer.descriptor.size)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [str(d.diff_id) for d, _ in layers]},
    }
    config_digest, config_size = _blob(layout, json.dumps(config).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config_size,
        },
        "layers": [
            {"mediaType": d.descriptor.media_type, "digest": str(d.blob), "size": d.descriptor.size}
            for d, _ in layers
        ],
    }
    manifest_digest, manifest_size = _blob(layout, json.dumps(manifest).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": "test"},
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))


@pytest.mark.root
def test_overlay_step_whiteouts_give_the_expected_tree_in_umoci(tmp_path: Path) -> None:
    require_root()
    umoci = require_tool("umoci")
    base = _base(tmp_path / "base")
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    with overlay_mount([base], upper, work, merged):
        _step(merged)
        # What the container saw is, by definition, the tree the image must reproduce.
        expected = snapshot(merged, mtimes=False)

    assert "replaced/old-file" not in expected and "etc/delete-me" not in expected
    assert expected["replaced/new-file"].kind == "file"

    layers: list[tuple[Layer, bytes]] = []
    layer_format = LayerFormat(source_date_epoch=1_700_000_000)
    for make, source in ((directory_layer, base), (upper_layer, upper)):
        out = io.BytesIO()
        layers.append((make(source, out, layer_format), out.getvalue()))

    with tarfile.open(fileobj=io.BytesIO(layers[1][1])) as tar:
        names = [m.name for m in tar]
    assert "etc/.wh.delete-me" in names
    assert ".wh.gone" in names
    # The opaque marker follows its directory at once, before the directory's new children.
    opaque = names.index("replaced/.wh..wh..opq")
    assert names[opaque - 1] == "replaced"
    assert names.index("replaced/new-file") > opaque

    layout, bundle = tmp_path / "layout", tmp_path / "bundle"
    _oci_layout(layout, layers)
    result = subprocess.run(
        [umoci, "unpack", "--image", f"{layout}:test", str(bundle)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"umoci unpack failed:\n{result.stderr}"
    assert snapshot(bundle / "rootfs", mtimes=False) == expected

    # Our own unpacker agrees with umoci in both modes.
    ours = tmp_path / "ours"
    ours.mkdir()
    for desc, data in layers:
        unpack_layer(io.BytesIO(data), ours, trusted=True, expected_diff_id=str(desc.diff_id))
    assert snapshot(ours, mtimes=False) == expected

    lower_dirs = []
    for n, (_, data) in enumerate(layers):
        lower_dirs.append(tmp_path / f"lower{n}")
        lower_dirs[-1].mkdir()
        unpack_layer(io.BytesIO(data), lower_dirs[-1], mode=UnpackMode.OVERLAY, trusted=True)
    assert os.getxattr(lower_dirs[1] / "replaced", "trusted.overlay.opaque") == b"y"
    whiteout = os.lstat(lower_dirs[1] / "etc" / "delete-me")
    assert (os.major(whiteout.st_rdev), os.minor(whiteout.st_rdev)) == (0, 0)
    with overlay_readonly(lower_dirs[::-1], tmp_path / "view") as view:
        assert snapshot(view, mtimes=False) == expected


def test_zstd_layers_unpack_the_same(tmp_path: Path) -> None:
    base = _base(tmp_path / "base")
    gz, zst = io.BytesIO(), io.BytesIO()
    d_gz = directory_layer(base, gz, LayerFormat(compression=Compression.GZIP))
    d_zst = directory_layer(base, zst, LayerFormat(compression=Compression.ZSTD))
    assert d_gz.diff_id == d_zst.diff_id
    assert d_gz.blob != d_zst.blob
    for name, blob in (("gz", gz), ("zst", zst)):
        (tmp_path / name).mkdir()
        blob.seek(0)
        unpack_layer(blob, tmp_path / name)
    assert snapshot(tmp_path / "gz") == snapshot(tmp_path / "zst") == snapshot(base)


@pytest.mark.root
def test_renamed_lower_dirs_are_refused_with_redirect_dir_and_copied_without(
    tmp_path: Path,
) -> None:
    require_root()
    base = _base(tmp_path / "base")
    upper, work, merged = tmp_path / "upper", tmp_path / "work", tmp_path / "merged"
    with overlay_mount([base], upper, work, merged, ",redirect_dir=on"):
        os.rename(merged / "replaced", merged / "moved")
    # The upper dir alone cannot say where "moved" came from; a silent layer would be wrong.
    with pytest.raises(LayerWriteError, match="redirect"):
        upper_layer(upper, io.BytesIO())

    upper2, work2, merged2 = tmp_path / "upper2", tmp_path / "work2", tmp_path / "merged2"
    with overlay_mount([base], upper2, work2, merged2):
        # Without redirect_dir the kernel refuses the rename, and mv copies instead.
        subprocess.run(["mv", str(merged2 / "replaced"), str(merged2 / "moved")], check=True)
        expected = snapshot(merged2, mtimes=False)
    blob = io.BytesIO()
    upper_layer(upper2, blob)
    blob.seek(0)
    target = tmp_path / "target"
    subprocess.run(["cp", "-a", str(base), str(target)], check=True)
    unpack_layer(blob, target, trusted=True)
    assert snapshot(target, mtimes=False) == expected
