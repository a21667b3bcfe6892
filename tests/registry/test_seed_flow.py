"""The seed's workflow end to end against the real registry: three platforms pushed as a Docker
manifest list, inspected, checked by skopeo, pulled for arm/v7 and run (prints armv7l)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polybuild.image import mediatypes as mt
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.importer import import_rootfs
from polybuild.platforms import Platform
from polybuild.registry import push
from polybuild.testing.busybox import make_rootfs_tar
from tests.conftest import require_platforms, require_root, require_tool, run_cli
from tests.registry.conftest import Registry, make_client

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

ARCHES = [
    ("amd64", Platform("linux", "amd64")),
    ("arm64", Platform("linux", "arm64")),
    ("armhf", Platform("linux", "arm", "v7")),
]


def _polybuild(root: Path, *args: str) -> str:
    proc = run_cli(root, *args)
    assert proc.returncode == 0, f"polybuild {' '.join(args)}:\n{proc.stderr}"
    return str(proc.stdout)


def test_build_push_inspect_pull_run(
    tmp_path: Path, registry: Registry, docker_config: Path
) -> None:
    skopeo = require_tool("skopeo")
    store = ImageStore(tmp_path / "builder")
    for debian_arch, platform in ARCHES:
        tarball = make_rootfs_tar(debian_arch, tmp_path / f"{debian_arch}.tar")
        with tarball.open("rb") as file:
            imported = import_rootfs(store, file, "user/image:latest", platform)
    ref = parse(f"{registry.host}/user/image:latest")
    pushed = asyncio.run(
        push(store.content, imported.index, [ref], docker_media_types=True, client=make_client())
    )
    assert pushed.media_type == mt.DOCKER_MANIFEST_LIST

    client_root = tmp_path / "client"
    shown = _polybuild(client_root, "imagetools", "inspect", str(ref))
    assert f"MediaType: {mt.DOCKER_MANIFEST_LIST}\nDigest:    {pushed.digest}\n" in shown
    assert [line.split()[-1] for line in shown.splitlines() if "Platform:" in line] == [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
    ]
    assert shown.count(f"MediaType: {mt.DOCKER_MANIFEST}\n") == 3

    raw = subprocess.run(
        [skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
        capture_output=True,
        timeout=120,
        check=True,
    ).stdout
    ours = subprocess.run(
        [sys.executable, "-m", "polybuild", "imagetools", "inspect", "--raw", str(ref)],
        capture_output=True,
        timeout=120,
        check=True,
        env={**os.environ, "POLYBUILD_ROOT": str(client_root)},
    ).stdout
    assert ours == raw  # byte for byte

    layout = tmp_path / "layout"
    subprocess.run(
        [skopeo, "copy", "--all", "--src-tls-verify=false", f"docker://{ref}", f"oci:{layout}:x"],
        capture_output=True,
        timeout=300,
        check=True,
    )
    top = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    # skopeo writes OCI media types into a layout, so it re-encodes the list; same platforms
    copied = json.loads((layout / "blobs" / "sha256" / top.split(":")[1]).read_text())
    platforms = [m["platform"] for m in copied["manifests"]]
    assert [(p["architecture"], p.get("variant", "")) for p in platforms] == [
        ("amd64", ""),
        ("arm64", ""),
        ("arm", "v7"),
    ]

    _polybuild(client_root, "pull", "--platform", "linux/arm/v7", str(ref))
    require_root()
    require_platforms("linux/arm/v7")
    output = _polybuild(client_root, "run", "--platform", "linux/arm/v7", str(ref), "uname", "-m")
    assert output.strip() == "armv7l"
