"""`--cache-to` / `--cache-from` on a BuildKit node are the daemon's own: a build exports
its cache to a registry ref (BuildKit's cache manifest), the daemon's cache is emptied, and
the next build with `--cache-from` takes the step from that ref instead of running it. A
local cache directory is refused on a BuildKit node, and so is one cache ref for a build
split between a daemon and polybuild's own nodes (their records cannot share it yet)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import httpx
import pytest

from tests.buildkit.conftest import BuildkitDaemon
from tests.buildkit.test_build_on_daemon import daemon_with_base  # noqa: F401 (a fixture)
from tests.conftest import run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

DOCKERFILE = "FROM {base}\nRUN cat /proc/sys/kernel/random/uuid > /stamp\n"
CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"


def stamp(oci: Path, position: int = -1) -> bytes:
    """/stamp from the layer at `position` of the one image in an OCI layout tarball."""
    with tarfile.open(oci) as tar:

        def blob(digest: str) -> bytes:
            member = tar.extractfile("blobs/" + digest.replace(":", "/"))
            assert member is not None
            return member.read()

        index = tar.extractfile("index.json")
        assert index is not None
        top = json.loads(blob(json.load(index)["manifests"][0]["digest"]))
        if "manifests" in top:
            top = json.loads(blob(top["manifests"][0]["digest"]))
        layer = blob(top["layers"][position]["digest"])
    with tarfile.open(fileobj=io.BytesIO(layer)) as inner:
        member = inner.extractfile("stamp")
        assert member is not None
        return member.read()


@pytest.fixture(scope="module")
def cache_daemon(
    daemon_with_base: tuple[BuildkitDaemon, str, Path],  # noqa: F811
    registry: Registry,  # noqa: F811
) -> tuple[Path, str, Registry, str]:
    daemon, base, root = daemon_with_base
    created = run_cli(root, "create", "--name", "bkcache", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    return root, base, registry, daemon.address


def test_a_registry_cache_exported_by_one_build_is_used_by_the_next(
    cache_daemon: tuple[Path, str, Registry, str], tmp_path: Path
) -> None:
    root, base, registry, address = cache_daemon  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    cache = f"{registry.host}/cache/app:buildcache"
    first = run_cli(root, "build", "--builder", "bkcache", "--platform", "linux/amd64",
                    "--cache-to", f"type=registry,ref={cache},mode=max",
                    "-o", f"type=oci,dest={tmp_path / 'a.tar'}", str(ctx))  # fmt: skip
    assert first.returncode == 0, first.stderr
    answer = httpx.get(
        f"http://{registry.host}/v2/cache/app/manifests/buildcache",
        headers={"Accept": "application/vnd.oci.image.index.v1+json, "
                           "application/vnd.oci.image.manifest.v1+json"},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    document = answer.json()
    config = document.get("config", {}).get("mediaType") or next(
        m["mediaType"] for m in document["manifests"] if m["mediaType"] == CACHE_CONFIG
    )
    assert config == CACHE_CONFIG

    pruned = run_cli(root, "prune", "--builder", "bkcache", "--all", "--force")
    assert pruned.returncode == 0, pruned.stderr
    again = run_cli(root, "build", "--builder", "bkcache", "--platform", "linux/amd64",
                    "--progress", "plain", "--cache-from", cache,
                    "-o", f"type=oci,dest={tmp_path / 'b.tar'}", str(ctx))  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert stamp(tmp_path / "b.tar") == stamp(tmp_path / "a.tar")  # the step did not run
    cold = run_cli(root, "build", "--builder", "bkcache", "--platform", "linux/amd64",
                   "--no-cache", "-o", f"type=oci,dest={tmp_path / 'c.tar'}", str(ctx))  # fmt: skip
    assert cold.returncode == 0, cold.stderr
    assert stamp(tmp_path / "c.tar") != stamp(tmp_path / "a.tar")  # it would have


def test_cache_flags_are_refused_where_they_cannot_run(
    cache_daemon: tuple[Path, str, Registry, str], tmp_path: Path
) -> None:
    root, base, registry, address = cache_daemon  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    local = run_cli(root, "build", "--builder", "bkcache", "--platform", "linux/amd64",
                    "--cache-to", f"type=local,dest={tmp_path / 'cache'}", str(ctx))  # fmt: skip
    assert local.returncode == 2, local.stderr
    assert "--cache-to type=local,dest=" in local.stderr
    assert "not supported on BuildKit node bkcache0" in local.stderr
    here = run_cli(root, "build", "--builder", "default", "--platform", "linux/amd64",
                   "--cache-from", f"{registry.host}/cache/app:x", str(ctx))  # fmt: skip
    assert "--cache-from type=registry,ref=" in here.stderr  # no such ref: a warning
    assert "not imported" in here.stderr and here.returncode == 0, here.stderr
    assert not (tmp_path / "cache").exists()
    created = run_cli(root, "create", "--name", "mixcache", "--platform", "linux/amd64")
    assert created.returncode == 0, created.stderr
    node = ("--node", "bkmix", "--driver", "remote", "--platform", "linux/arm64", address)
    assert run_cli(root, "create", "--append", "--name", "mixcache", *node).returncode == 0
    mixed = run_cli(root, "build", "--builder", "mixcache", "--platform",
                    "linux/amd64,linux/arm64", "--cache-to",
                    f"type=registry,ref={registry.host}/cache/mixed:1", str(ctx))  # fmt: skip
    assert mixed.returncode == 2, mixed.stderr
    assert "go to BuildKit daemons and to polybuild nodes" in mixed.stderr


def test_inline_cache_travels_in_the_pushed_image(
    cache_daemon: tuple[Path, str, Registry, str], tmp_path: Path
) -> None:
    root, base, registry, address = cache_daemon  # noqa: F811
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base) + "RUN echo inline > /i\n")
    image = f"{registry.host}/cache/inline:1"
    first = run_cli(root, "build", "--builder", "bkcache", "--platform", "linux/amd64",
                    "--cache-to", "type=inline", "--push", "-t", image, str(ctx))  # fmt: skip
    assert first.returncode == 0, first.stderr
    pruned = run_cli(root, "prune", "--builder", "bkcache", "--all", "--force")
    assert pruned.returncode == 0, pruned.stderr
    again = run_cli(root, "build", "--builder", "bkcache", "--platform", "linux/amd64",
                    "--cache-from", image, "-o", f"type=oci,dest={tmp_path / 'b.tar'}",
                    str(ctx))  # fmt: skip
    assert again.returncode == 0, again.stderr
    fresh = tmp_path / "fresh"
    pulled = run_cli(fresh, "pull", image)
    assert pulled.returncode == 0, pulled.stderr
    ran = run_cli(fresh, "run", image, "cat", "/stamp")
    assert ran.returncode == 0, ran.stderr
    # The step's output came from the pushed image's layers, not a new run.
    assert ran.stdout.encode() == stamp(tmp_path / "b.tar", -2)
