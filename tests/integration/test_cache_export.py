"""`--cache-to` / `--cache-from` on polybuild's own solver, against a real docker-registry:
a two-platform multi-stage build exported with mode=max and imported on an empty data root
runs no step; mode=min leaves the steps outside the final image to run; a changed context
file misses from the COPY that reads it on; builds of different platforms merge into one
cache; a corrupt cached blob is caught by its digest and its step runs; the cache artifact is
BuildKit's layout."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import import_busybox, require_platforms, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

DOCKERFILE = """\
FROM {base} AS build
RUN cat /proc/sys/kernel/random/uuid > /made
FROM {base}
COPY --from=build /made /made
COPY f.txt /f.txt
RUN cat /proc/sys/kernel/random/uuid > /final
"""
PLATFORMS = "linux/amd64,linux/arm64"
CACHE_CONFIG = "application/vnd.buildkit.cacheconfig.v0"


@pytest.fixture(scope="module")
def base(
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[str, Registry]]:
    require_root()
    require_platforms("linux/arm64")
    seeder = tmp_path_factory.mktemp("cache-seed") / "root"
    name = f"{registry.host}/library/busybox:latest"
    import_busybox(seeder, ("amd64", "arm64"), name=name)
    pushed = run_cli(seeder, "push", name)
    assert pushed.returncode == 0, pushed.stderr
    yield name, registry


def context(tmp_path: Path, base: str, text: str = "one\n") -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE.format(base=base))
    (ctx / "f.txt").write_text(text)
    return ctx


def registry_json(
    reg: Registry, repository: str, reference: str, accept: str = ""
) -> dict[str, Any]:
    accept = accept or "application/vnd.oci.image.index.v1+json"
    url = f"http://{reg.host}/v2/{repository}/manifests/{reference}"
    document: dict[str, Any] = httpx.get(url, headers={"Accept": accept}).json()
    return document


def stored_blobs(root: Path) -> set[str]:
    from polybuild.image import ImageStore

    blobs = ImageStore(root).content.root
    return {f"sha256:{p.name}" for p in blobs.rglob("*") if p.is_file() and len(p.name) == 64}


def build(
    root: Path, ctx: Path, out: Path, *flags: str, platforms: str = PLATFORMS
) -> dict[str, dict[str, str]]:
    """Build into a local directory; each platform's /made, /final and /f.txt."""
    done = run_cli(root, "build", "--platform", platforms, "--progress", "plain", *flags,
                   "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    found = {}
    for platform in platforms.split(","):
        where = out / platform.replace("/", "_") if "," in platforms else out
        found[platform] = {n: (where / n).read_text() for n in ("made", "final", "f.txt")}
    return found


def test_mode_max_on_an_empty_data_root_runs_nothing_and_min_leaves_the_build_stage(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    ctx = context(tmp_path, name)
    cache = f"{reg.host}/cache/app:max"
    first = build(tmp_path / "r1", ctx, tmp_path / "o1",
                  "--cache-to", f"type=registry,ref={cache},mode=max")  # fmt: skip

    manifest = httpx.get(
        f"http://{reg.host}/v2/cache/app/manifests/max",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    assert manifest["config"]["mediaType"] == CACHE_CONFIG
    assert all("containerd.io/uncompressed" in x["annotations"] for x in manifest["layers"])

    # Another path, new mtimes and inodes: the keys are of the content only.
    moved = shutil.copytree(ctx, tmp_path / "elsewhere" / "checkout", copy_function=shutil.copy)
    again = build(tmp_path / "r2", moved, tmp_path / "o2", "--cache-from", cache)
    assert again == first  # every step came from the cache: the same uuids
    # Lazy: the build stage's RUN layers (one per platform) were only parents of hits.
    cached = {layer["digest"] for layer in manifest["layers"]}
    assert len(cached - stored_blobs(tmp_path / "r2")) == 2
    # What was fetched is this data root's own cache now: no import needed to hit it.
    local = build(tmp_path / "r2", moved, tmp_path / "o6")
    assert {p: r["final"] for p, r in local.items()} == {p: r["final"] for p, r in first.items()}

    minimal = f"{reg.host}/cache/app:min"
    build(tmp_path / "r3", ctx, tmp_path / "o3",
          "--cache-to", f"type=registry,ref={minimal},mode=min")  # fmt: skip
    mixed = build(tmp_path / "r4", ctx, tmp_path / "o4", "--cache-from", minimal)
    reference = build(tmp_path / "r3", ctx, tmp_path / "o5")  # r3's own warm build
    for platform in PLATFORMS.split(","):
        # the final image's steps are hits; the build stage (not in a min cache) ran again,
        # and the COPY of its output still hit: its key is its inputs' keys, not their bytes
        assert mixed[platform]["final"] == reference[platform]["final"]
        assert mixed[platform]["made"] == reference[platform]["made"]


def test_a_changed_context_file_misses_from_the_copy_that_reads_it(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    cache = f"{reg.host}/cache/changed:1"
    first = build(tmp_path / "r1", context(tmp_path, name), tmp_path / "o1",
                  "--cache-to", f"type=registry,ref={cache},mode=max")  # fmt: skip
    changed = build(tmp_path / "r2", context(tmp_path, name, "two\n"), tmp_path / "o2",
                    "--cache-from", cache)  # fmt: skip
    for platform in PLATFORMS.split(","):
        assert changed[platform]["made"] == first[platform]["made"]  # before the COPY: hit
        assert changed[platform]["f.txt"] == "two\n"
        assert changed[platform]["final"] != first[platform]["final"]  # after it: ran


def test_builds_of_different_platforms_merge_into_one_cache(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    ctx = context(tmp_path, name)
    cache = f"type=registry,ref={reg.host}/cache/merged:1,mode=max"
    amd = build(tmp_path / "r1", ctx, tmp_path / "o1", "--cache-to", cache,
                platforms="linux/amd64")  # fmt: skip
    arm = build(tmp_path / "r2", ctx, tmp_path / "o2", "--cache-to", cache,
                platforms="linux/arm64")  # fmt: skip
    both = build(tmp_path / "r3", ctx, tmp_path / "o3", "--cache-from", cache)
    assert both["linux/amd64"] == amd["linux/amd64"]
    assert both["linux/arm64"] == arm["linux/arm64"]


def test_a_corrupt_cached_layer_is_caught_and_its_steps_run(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    ctx = context(tmp_path, name)
    ref = f"{reg.host}/cache/corrupt:1"
    first = build(tmp_path / "r1", ctx, tmp_path / "o1",
                  "--cache-to", f"type=registry,ref={ref},mode=max",
                  platforms="linux/amd64")  # fmt: skip
    manifest = httpx.get(
        f"http://{reg.host}/v2/cache/corrupt/manifests/1",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    config = httpx.get(
        f"http://{reg.host}/v2/cache/corrupt/blobs/{manifest['config']['digest']}"
    ).json()
    # The top layer of the longest chain: the final RUN's.
    tops = [r["layers"][0]["layer"] for r in config["records"]]
    depth = {}
    for index in tops:
        n, at = 0, index
        while at != -1:
            n, at = n + 1, config["layers"][at].get("parent", 0)
        depth[index] = n
    blob = config["layers"][max(tops, key=lambda i: depth[i])]["blob"]
    data = reg.storage / "docker/registry/v2/blobs/sha256" / blob[7:9] / blob[7:] / "data"
    data.write_bytes(b"not the layer" + data.read_bytes()[13:])

    out = tmp_path / "o2"
    done = run_cli(tmp_path / "r2", "build", "--platform", "linux/amd64", "--progress", "plain",
                   "--cache-from", ref, "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert blob in done.stderr and "run instead" in done.stderr, done.stderr
    assert (out / "made").read_text() == first["linux/amd64"]["made"]  # its own layer was fine
    assert (out / "final").read_text() != first["linux/amd64"]["final"]  # this one ran


def test_a_missing_cache_is_a_warning_and_unsupported_types_are_refused(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    ctx = context(tmp_path, name)
    done = run_cli(tmp_path / "r1", "build", "--platform", "linux/amd64",
                   "--cache-from", f"{reg.host}/cache/none:1",
                   "--cache-from", f"type=local,src={tmp_path / 'nothing'}",
                   "-o", f"type=local,dest={tmp_path / 'o'}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("not imported") == 2, done.stderr
    refused = run_cli(tmp_path / "r1", "build", "--cache-to", "type=gha", str(ctx))
    assert refused.returncode == 2
    assert "cache type gha" in refused.stderr
    assert "type=registry, type=local or type=inline" in refused.stderr
    failed = run_cli(tmp_path / "r1", "build", "--platform", "linux/amd64",
                     "--cache-to", "type=registry,ref=127.0.0.1:9/none/here:1",
                     str(ctx))  # fmt: skip
    assert failed.returncode != 0
    assert "the cache could not be exported" in failed.stderr
    ignored = run_cli(tmp_path / "r1", "build", "--platform", "linux/amd64",
                      "--cache-to", "type=registry,ref=127.0.0.1:9/none/here:1,ignore-error=true",
                      str(ctx))  # fmt: skip
    assert ignored.returncode == 0, ignored.stderr
    assert "not exported (ignore-error=true)" in ignored.stderr


def test_a_local_cache_directory_round_trips(base: tuple[str, Registry], tmp_path: Path) -> None:
    name, _ = base
    ctx = context(tmp_path, name)
    cache = tmp_path / "cache"
    first = build(tmp_path / "r1", ctx, tmp_path / "o1",
                  "--cache-to", f"type=local,dest={cache},mode=max")  # fmt: skip
    index = json.loads((cache / "index.json").read_text())
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [
        "latest"
    ]
    again = build(tmp_path / "r2", ctx, tmp_path / "o2", "--cache-from", f"type=local,src={cache}")
    assert again == first


def test_an_inline_cache_travels_in_the_pushed_image(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    ctx = context(tmp_path, name)
    image = f"{reg.host}/cache/inline:1"
    pushed = run_cli(tmp_path / "r1", "build", "--platform", PLATFORMS,
                     "--cache-to", "type=inline", "--push", "-t", image, str(ctx))  # fmt: skip
    assert pushed.returncode == 0, pushed.stderr
    index = httpx.get(
        f"http://{reg.host}/v2/cache/inline/manifests/1",
        headers={"Accept": "application/vnd.oci.image.index.v1+json"},
    ).json()
    for entry in index["manifests"]:
        if entry["platform"]["os"] == "unknown":
            continue  # buildx's default provenance: an attestation manifest, no config
        manifest = httpx.get(
            f"http://{reg.host}/v2/cache/inline/manifests/{entry['digest']}",
            headers={"Accept": entry["mediaType"]},
        ).json()
        config = httpx.get(
            f"http://{reg.host}/v2/cache/inline/blobs/{manifest['config']['digest']}"
        ).json()
        assert config["moby.buildkit.cache.v0"]
    first = build(tmp_path / "r2", ctx, tmp_path / "o1", "--cache-from", image)
    second = build(tmp_path / "r3", ctx, tmp_path / "o2", "--cache-from", image)
    assert first == second  # both took the final image's steps from the image's own cache
    fresh = tmp_path / "fresh"
    assert run_cli(fresh, "pull", image).returncode == 0
    ran = run_cli(fresh, "run", image, "cat", "/final")
    assert (ran.returncode, ran.stdout) == (0, first["linux/amd64"]["final"]), ran.stderr


def test_a_cached_push_downloads_no_cached_layer(
    base: tuple[str, Registry], tmp_path: Path
) -> None:
    name, reg = base
    ctx = context(tmp_path, name)
    cache = f"{reg.host}/cache/pushed:c"
    first = build(tmp_path / "r1", ctx, tmp_path / "o1",
                  "--cache-to", f"type=registry,ref={cache},mode=max")  # fmt: skip
    image = f"{reg.host}/cache/pushed:1"
    done = run_cli(tmp_path / "r2", "build", "--platform", PLATFORMS, "--push", "-t", image,
                   "--cache-from", cache, "--cache-to", f"type=registry,ref={cache},mode=max",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = httpx.get(
        f"http://{reg.host}/v2/cache/pushed/manifests/c",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
    ).json()
    cached = {layer["digest"] for layer in manifest["layers"]}
    here = stored_blobs(tmp_path / "r2")
    base_layers = set()  # busybox's own layers: FROM pulls them, as ever
    for entry in registry_json(reg, "library/busybox", "latest")["manifests"]:
        platform = registry_json(reg, "library/busybox", entry["digest"], entry["mediaType"])
        base_layers.update(x["digest"] for x in platform["layers"])
    assert cached - base_layers, "the cache holds the build's own layers"
    assert not (cached - base_layers) & here, "the push downloaded cached layers"
    fresh = tmp_path / "fresh"
    assert run_cli(fresh, "pull", "--all-platforms", image).returncode == 0
    ran = run_cli(fresh, "run", "--platform", "linux/arm64", image, "cat", "/final")
    assert (ran.returncode, ran.stdout) == (0, first["linux/arm64"]["final"]), ran.stderr
