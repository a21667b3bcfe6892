"""Saved OCI layout tarballs are accepted by skopeo and umoci (real tools, never skipped)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from polybuild.image.archive import save_archive_file
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image, write_index
from polybuild.platforms import Platform

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64"), Platform("linux", "arm", "v7")]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not installed; install it (apt-get install {name}) to run this test"
        )
    return path


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "root")


def test_skopeo_reads_a_saved_multi_platform_archive(store: ImageStore, tmp_path: Path) -> None:
    skopeo = _tool("skopeo")
    target = write_index(store.content, PLATFORMS)
    store.tag("demo:1", target)
    save_archive_file(store, ["demo:1"], tmp_path / "saved.tar")

    raw = _run(skopeo, "inspect", "--raw", f"oci-archive:{tmp_path / 'saved.tar'}")
    assert raw.encode() == store.content.get(target.digest)  # the exact stored bytes
    index = json.loads(raw)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64", "arm"]
    # by tag (org.opencontainers.image.ref.name) and with platform selection
    arm = json.loads(
        _run(
            skopeo,
            "inspect",
            "--override-arch",
            "arm",
            "--override-variant",
            "v7",
            f"oci-archive:{tmp_path / 'saved.tar'}:1",
        )
    )
    assert (arm["Architecture"], arm["Os"]) == ("arm", "linux")
    assert arm["Digest"] == str(target.digest)


@pytest.mark.root
def test_umoci_reads_saved_layouts(store: ImageStore, tmp_path: Path) -> None:
    umoci = _tool("umoci")
    store.tag("multi:3", write_index(store.content, PLATFORMS))
    save_archive_file(store, ["multi:3"], tmp_path / "multi.tar")
    with tarfile.open(tmp_path / "multi.tar") as tar:
        tar.extractall(tmp_path / "multi", filter="data")
    assert _run(umoci, "ls", "--layout", str(tmp_path / "multi")).split() == ["3"]
    blobs = sorted((tmp_path / "multi" / "blobs" / "sha256").iterdir())
    # umoci gc deletes unreferenced blobs: it must find every blob we wrote referenced
    _run(umoci, "gc", "--layout", str(tmp_path / "multi"))
    assert sorted((tmp_path / "multi" / "blobs" / "sha256").iterdir()) == blobs

    # umoci 0.4 cannot pick a platform from an index, so unpack a single-platform image
    store.tag("single:2", write_image(store.content, Platform("linux", "arm64"), {"etc/hi": b"hi"}))
    save_archive_file(store, ["single:2"], tmp_path / "single.tar")
    with tarfile.open(tmp_path / "single.tar") as tar:
        tar.extractall(tmp_path / "single", filter="data")
    bundle = tmp_path / "bundle"
    _run(umoci, "unpack", "--rootless", "--image", f"{tmp_path / 'single'}:2", str(bundle))
    assert (bundle / "rootfs" / "etc" / "hi").read_bytes() == b"hi"
    stat = json.loads(_run(umoci, "stat", "--json", "--image", f"{tmp_path / 'single'}:2"))
    assert stat["history"][0]["created_by"] == "COPY . / # buildkit"
