"""A cold build for six platforms pulls its base for each of them while the frontends wait
(on a 2-core machine the loop's default pool has six threads: the frontends once took them
all and the pulls they waited for never ran)."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import BUSYBOX_PLATFORMS, import_busybox, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]


@pytest.fixture(scope="module")
def base(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    require_root()
    seeder = tmp_path_factory.mktemp("many-seed") / "root"
    name = f"{registry.host}/library/busybox:latest"
    import_busybox(seeder, tuple(BUSYBOX_PLATFORMS), name=name)
    pushed = run_cli(seeder, "push", name)
    assert pushed.returncode == 0, pushed.stderr
    yield name


def test_six_platforms_from_a_registry_on_an_empty_root(base: str, tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nCOPY f.txt /f.txt\n")
    (ctx / "f.txt").write_text("hello\n")
    out = tmp_path / "out.tar"
    platforms = ",".join(BUSYBOX_PLATFORMS.values())
    done = run_cli(tmp_path / "root", "build", "--platform", platforms,
                   "-o", f"type=oci,dest={out}", str(ctx), timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as archive:
        index = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
        (entry,) = index["manifests"]
        inner = archive.extractfile(f"blobs/sha256/{entry['digest'].split(':')[1]}")
        manifests = json.load(inner)["manifests"]  # type: ignore[arg-type]
    images = [m for m in manifests if m["platform"]["os"] != "unknown"]
    assert len(images) == len(BUSYBOX_PLATFORMS)
    # buildx's default provenance, one attestation manifest per image, after them all
    assert [m["annotations"]["vnd.docker.reference.digest"] for m in manifests[len(images) :]] == [
        m["digest"] for m in images
    ]
    manifests = images
