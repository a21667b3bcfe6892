"""Writing each output kind, checked with skopeo and umoci where a real tool can judge."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

from polybuild.errors import PolybuildError, UsageError
from polybuild.exporters import (
    assemble,
    export,
    metadata,
    parse_outputs,
    write_iidfile,
)
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.platform_image import ExportSource
from polybuild.image.reference import Reference, parse
from polybuild.image.store import ImageStore
from polybuild.platforms import default_platform
from tests.conftest import require_tool
from tests.exporters.conftest import PLATFORMS


def _run(*argv: str) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} failed:\n{result.stderr}"
    return result.stdout


def _export(
    source: ExportSource, store: ImageStore, *specs: str, **kwargs: Any
) -> tuple[list[Any], list[str]]:
    warnings: list[str] = []
    results = export(
        source,
        parse_outputs(list(specs), tags=kwargs.pop("tags", ())),
        store=store,
        warn=warnings.append,
        **kwargs,
    )
    return results, warnings


def test_oci_archive_read_by_skopeo(
    source: ExportSource, store: ImageStore, tmp_path: Path
) -> None:
    skopeo = require_tool("skopeo")
    out = tmp_path / "out.tar"
    (result,), _ = _export(source, store, f"type=oci,dest={out}", tags=["demo:1"])
    raw = _run(skopeo, "inspect", "--raw", f"oci-archive:{out}")
    assert raw.encode() == store.content.get(result.image.digest)
    index = json.loads(raw)
    assert index["mediaType"] == mt.OCI_INDEX
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "arm", "os": "linux", "variant": "v7"},
    ]
    arm = json.loads(
        _run(
            skopeo,
            "inspect",
            "--override-arch",
            "arm",
            "--override-variant",
            "v7",
            f"oci-archive:{out}:1",
        )
    )
    assert arm["Architecture"] == "arm"
    assert arm["Digest"] == str(result.image.digest)  # skopeo reports the top-level digest
    assert len(arm["Layers"]) == 2
    assert not list(tmp_path.glob(".out.tar.*"))  # no temp file left behind


@pytest.mark.root
def test_single_platform_oci_archive_unpacked_by_umoci(
    single: ExportSource, store: ImageStore, tmp_path: Path
) -> None:
    umoci = require_tool("umoci")
    out = tmp_path / "one.tar"
    _export(single, store, f"type=oci,dest={out}", tags=["one:latest"])
    layout = tmp_path / "layout"
    layout.mkdir()
    with tarfile.open(out) as tar:
        tar.extractall(layout, filter="data")
    # As BuildKit writes it: the one entry says which platform the layout holds.
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    assert entry["platform"] == {"architecture": "arm64", "os": "linux"}
    bundle = tmp_path / "bundle"
    _run(umoci, "unpack", "--rootless", "--image", f"{layout}:latest", str(bundle))
    rootfs = bundle / "rootfs"
    assert (rootfs / "etc/os").read_text() == "linux/arm64\n"
    assert (rootfs / "etc/extra").read_text() == "extra\n"
    assert not (rootfs / "tmp/deleteme").exists()  # the whiteout applied


def test_oci_archive_to_stdout(source: ExportSource, store: ImageStore) -> None:
    stdout = io.BytesIO()
    (result,), _ = _export(source, store, "type=oci,dest=-", stdout=stdout)
    with tarfile.open(fileobj=io.BytesIO(stdout.getvalue())) as tar:
        names = tar.getnames()
        index_file = tar.extractfile("index.json")
        assert index_file is not None
        index = json.loads(index_file.read())
    assert {"oci-layout", "index.json"} <= set(names)
    assert index["manifests"][0]["digest"] == str(result.image.digest)


def test_docker_archive_shape(source: ExportSource, store: ImageStore, tmp_path: Path) -> None:
    skopeo = require_tool("skopeo")
    out = tmp_path / "docker.tar"
    (result,), warnings = _export(source, store, f"type=docker,dest={out}", tags=["demo:2"])
    with tarfile.open(out) as tar:
        member = tar.extractfile("manifest.json")
        assert member is not None
        manifest_json = json.loads(member.read())
        names = set(tar.getnames())
    (entry,) = manifest_json
    assert set(entry) == {"Config", "RepoTags", "Layers"}
    assert entry["RepoTags"] == ["demo:2"]
    chosen = next(p for p in result.image.platforms if p.platform == default_platform())
    assert entry["Config"] == f"blobs/sha256/{chosen.config.digest.hex}"
    assert entry["Layers"] == [
        f"blobs/sha256/{layer.digest.hex}" for layer in chosen.manifest.value.layers
    ]
    assert {entry["Config"], *entry["Layers"], "index.json", "oci-layout"} <= names
    # every platform is in the archive, and the warning says which one docker load gets
    assert result.image.target.media_type == mt.DOCKER_MANIFEST_LIST
    (warning,) = warnings
    assert f"lists only {default_platform()}" in warning and "linux/arm/v7" in warning
    inspected = json.loads(_run(skopeo, "inspect", f"docker-archive:{out}"))
    assert inspected["Architecture"] == default_platform().architecture
    assert inspected["Digest"]  # skopeo rebuilt a manifest from manifest.json
    assert len(inspected["Layers"]) == 2


def test_local_directory_per_platform(
    source: ExportSource, store: ImageStore, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    _export(source, store, str(dest))
    assert sorted(p.name for p in dest.iterdir()) == ["linux_amd64", "linux_arm64", "linux_arm_v7"]
    for platform in PLATFORMS:
        root = dest / str(platform).replace("/", "_")
        assert (root / "etc/os").read_text() == f"{platform}\n"
        assert (root / "etc/extra").read_text() == "extra\n"
        assert not (root / "tmp/deleteme").exists()
        assert os.access(root / "bin/tool", os.X_OK)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_local_single_platform_goes_straight_into_dest(
    single: ExportSource, store: ImageStore, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "keep").write_text("mine")
    (dest / "etc").mkdir()
    (dest / "etc" / "stale").write_text("old")
    _export(single, store, f"type=local,dest={dest}")
    assert (dest / "etc/os").read_text() == "linux/arm64\n"
    assert (dest / "keep").read_text() == "mine"  # unrelated files stay, as with buildx
    # Directories merge (BuildKit's local exporter receives with fsutil's Merge): the
    # user's own files inside them stay too.
    assert (dest / "etc/stale").read_text() == "old"


def test_tar_output_holds_the_platform_trees(source: ExportSource, store: ImageStore) -> None:
    stdout = io.BytesIO()
    _export(source, store, "-", stdout=stdout)
    with tarfile.open(fileobj=io.BytesIO(stdout.getvalue())) as tar:
        names = set(tar.getnames())
        member = tar.extractfile("linux_arm_v7/etc/os")
        assert member is not None and member.read() == b"linux/arm/v7\n"
    assert "linux_amd64/etc/extra" in names
    assert not any(n.endswith("deleteme") for n in names)


def _corrupt_a_layer(source: ExportSource) -> None:
    layer = source.platforms[-1].manifest.value.layers[-1]
    path = source.content.path(layer.digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("spec", ["type=oci,dest={}", "type=docker,dest={}", "type=tar,dest={}"])
def test_failed_file_export_leaves_nothing(
    source: ExportSource, store: ImageStore, tmp_path: Path, spec: str
) -> None:
    _corrupt_a_layer(source)
    out = tmp_path / "out.tar"
    with pytest.raises(PolybuildError) as info:
        _export(source, store, spec.format(out))
    assert "corrupt" in str(info.value) or "diff-id" in str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "root"]


def test_failed_local_export_leaves_nothing(
    source: ExportSource, store: ImageStore, tmp_path: Path
) -> None:
    _corrupt_a_layer(source)
    with pytest.raises(PolybuildError):
        _export(source, store, f"type=local,dest={tmp_path / 'out'}")
    assert list(tmp_path.iterdir()) == [tmp_path / "root"]


def test_bad_destinations_fail_before_writing(
    source: ExportSource, store: ImageStore, tmp_path: Path
) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="is a file"):
        _export(source, store, f"type=local,dest={tmp_path / 'file'}")
    with pytest.raises(UsageError, match="is a directory"):
        _export(source, store, f"type=oci,dest={tmp_path}")


def test_image_output_tags_and_pushes(source: ExportSource, store: ImageStore) -> None:
    pushed: list[tuple[Descriptor, tuple[Reference, ...], bool]] = []

    def pusher(
        content: ContentStore, target: Descriptor, refs: Any, *, docker_media_types: bool
    ) -> None:
        assert content.exists(target.digest)
        pushed.append((target, tuple(refs), docker_media_types))

    warnings: list[str] = []
    (result,) = export(
        source,
        parse_outputs([], push=True, load=True, tags=["r.example/a:1", "r.example/a:latest"]),
        store=store,
        pusher=pusher,
        warn=warnings.append,
    )
    assert [str(r.name) for r in store.records()] == ["r.example/a:1", "r.example/a:latest"]
    assert store.resolve("r.example/a:1").target.digest == result.image.digest
    assert store.platforms(result.image.target) == PLATFORMS
    assert pushed == [
        (result.image.target, (parse("r.example/a:1"), parse("r.example/a:latest")), False)
    ]
    assert store.gc() == (0, 0)  # every blob is named now
    store.content.verify(result.image.digest)


def test_push_without_pusher_is_a_usage_error(source: ExportSource, store: ImageStore) -> None:
    with pytest.raises(UsageError, match="no registry client"):
        export(source, parse_outputs([], push=True, tags=["a"]), store=store)


def test_load_without_names_keeps_an_unnamed_image(source: ExportSource, store: ImageStore) -> None:
    (result,), _ = _export(source, store, "type=image")
    (record,) = store.records()
    assert record.name is None and record.target.digest == result.image.digest


def test_metadata_and_iidfile(source: ExportSource, single: ExportSource, tmp_path: Path) -> None:
    multi = assemble(source, parse_outputs(["type=image"])[0].image)
    data = metadata(multi, [parse("a:1")])
    assert data["containerimage.digest"] == str(multi.digest)
    assert data["containerimage.descriptor"] == {
        "mediaType": mt.OCI_INDEX,
        "digest": str(multi.digest),
        "size": multi.target.size,
    }
    assert "containerimage.config.digest" not in data
    assert data["image.name"] == "docker.io/library/a:1"
    one = assemble(single, parse_outputs(["type=image"])[0].image)
    assert metadata(one)["containerimage.config.digest"] == str(single.platforms[0].config.digest)
    write_iidfile(tmp_path / "iid", one)
    assert (tmp_path / "iid").read_text() == str(single.platforms[0].config.digest)
    write_iidfile(tmp_path / "iid", multi)
    assert (tmp_path / "iid").read_text() == str(multi.digest)


def test_async_pusher_is_run_to_completion(source: ExportSource, store: ImageStore) -> None:
    done: list[str] = []

    async def pusher(
        content: ContentStore, target: Descriptor, refs: Any, *, docker_media_types: bool
    ) -> Descriptor:
        done.append(str(target.digest))
        return target

    (result,) = export(source, parse_outputs([], push=True, tags=["a"]), store=store, pusher=pusher)
    assert done == [str(result.image.digest)]


def test_local_output_to_the_current_directory(
    single: ExportSource, store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "work"
    (work / "etc").mkdir(parents=True)
    (work / "etc" / "mine.txt").write_text("keep me")
    monkeypatch.chdir(work)
    _export(single, store, ".")  # `-o .`, as in Docker's docs
    assert (work / "etc/os").read_text() == "linux/arm64\n"
    assert (work / "etc/mine.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
