"""`--push` on a BuildKit node is the daemon's, as buildx asks of a multi-node build's nodes:
the daemon pushes its platforms' manifests and layers by digest, and the client fetches back
only manifests and configs and writes the index and the tag. The client never holds the
daemon's layers, and a builder mixing this machine with a daemon pushes one index."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.buildkit.conftest import BuildkitDaemon
from tests.buildkit.test_build_on_daemon import daemon_with_base  # noqa: F401 (a fixture)
from tests.conftest import require_platforms, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

ACCEPT = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


@pytest.fixture
def pushing_daemon(
    daemon_with_base: tuple[BuildkitDaemon, str, Path],  # noqa: F811
    registry: Registry,  # noqa: F811
) -> tuple[BuildkitDaemon, str, Path, Registry]:
    daemon, base, root = daemon_with_base
    return daemon, base, root, registry


def manifest(at: Registry, repository: str, reference: str) -> dict[str, object]:
    url = f"http://{at.host}/v2/{repository}/manifests/{reference}"
    answer = httpx.get(url, headers={"Accept": ACCEPT})
    assert answer.status_code == 200, (url, answer.text)
    document: dict[str, object] = answer.json()
    return document


def layers(at: Registry, repository: str, index: dict[str, object]) -> dict[str, str]:
    """platform -> its last layer's digest, for every platform of `index`."""
    found = {}
    for entry in index["manifests"]:  # type: ignore[attr-defined]
        image = manifest(at, repository, entry["digest"])
        platform = entry["platform"]
        found[f"{platform['os']}/{platform['architecture']}"] = image["layers"][-1]["digest"]  # type: ignore[index]
    return found


def stored_blobs(root: Path) -> set[str]:
    from polybuild.image import ImageStore

    blobs = ImageStore(root).content.root
    return {f"sha256:{p.name}" for p in blobs.rglob("*") if p.is_file() and len(p.name) == 64}


def test_the_daemon_pushes_and_the_client_writes_the_index(
    pushing_daemon: tuple[BuildkitDaemon, str, Path, Registry], tmp_path: Path
) -> None:
    require_platforms("linux/arm64")
    daemon, base, root, registry = pushing_daemon  # noqa: F811
    created = run_cli(root, "create", "--name", "bkpush", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nARG WORD\nRUN echo $WORD-$(uname -m) > /w\n")
    (ctx / ".dockerignore").write_text("*.log\n")
    (ctx / "x.log").write_text("ignored\n")
    tag = f"{registry.host}/team/app:1"
    done = run_cli(root, "build", "--builder", "bkpush", "--platform", "linux/amd64,linux/arm64",
                   "--build-arg", "WORD=hi", "--push", "-t", tag,
                   "--metadata-file", str(tmp_path / "meta.json"), str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    index = manifest(registry, "team/app", "1")
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    pushed = layers(registry, "team/app", index)
    assert set(pushed) == {"linux/amd64", "linux/arm64"}
    assert not set(pushed.values()) & stored_blobs(root), "the client downloaded the layers"
    metadata = json.loads((tmp_path / "meta.json").read_text())
    fresh = tmp_path / "fresh"
    pulled = run_cli(fresh, "pull", "--all-platforms", tag)
    assert pulled.returncode == 0, pulled.stderr
    for platform, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        ran = run_cli(fresh, "run", "--platform", platform, tag, "cat", "/w")
        assert (ran.returncode, ran.stdout) == (0, f"hi-{arch}\n"), ran.stderr
    digest = metadata["containerimage.digest"]
    assert manifest(registry, "team/app", digest)["manifests"] == index["manifests"]


def test_a_mixed_builder_pushes_one_index(
    pushing_daemon: tuple[BuildkitDaemon, str, Path, Registry], tmp_path: Path
) -> None:
    require_platforms("linux/arm64")
    daemon, base, root, registry = pushing_daemon  # noqa: F811
    assert run_cli(root, "create", "--name", "mixpush", "--platform", "linux/amd64").returncode == 0
    node = ("--node", "bk", "--driver", "remote", "--platform", "linux/arm64", daemon.address)
    appended = run_cli(root, "create", "--append", "--name", "mixpush", *node)
    assert appended.returncode == 0, appended.stderr
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM {base}\nRUN uname -m > /arch\n")
    tag = f"{registry.host}/team/mixed:1"
    done = run_cli(root, "build", "--builder", "mixpush", "--platform",
                   "linux/amd64,linux/arm64", "--push", "-t", tag, str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    pushed = layers(registry, "team/mixed", manifest(registry, "team/mixed", "1"))
    # buildx's default provenance: an attestation manifest for each image, made here
    assert set(pushed) == {"linux/amd64", "linux/arm64", "unknown/unknown"}
    stored = stored_blobs(root)
    assert pushed["linux/amd64"] in stored  # built here, pushed by the client
    assert pushed["linux/arm64"] not in stored  # built and pushed by the daemon
    fresh = tmp_path / "fresh"
    pulled = run_cli(fresh, "pull", "--all-platforms", tag)
    assert pulled.returncode == 0, pulled.stderr
    for platform, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
        ran = run_cli(fresh, "run", "--platform", platform, tag, "cat", "/arch")
        assert (ran.returncode, ran.stdout) == (0, f"{arch}\n"), ran.stderr
