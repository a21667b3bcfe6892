"""`polybuild build` end to end: the seed's cross-compile example, outputs, cache, secrets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_platforms, require_root, require_tool, run_cli

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

THREE = "linux/amd64,linux/arm64,linux/arm/v7"
SEED = """\
# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM busybox AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
RUN echo "I am running on $BUILDPLATFORM, building for $TARGETPLATFORM" > /log
FROM busybox
COPY --from=build /log /log
"""


def polybuild(
    root: Path, *args: str, env: dict[str, str] | None = None, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    result: subprocess.CompletedProcess[bytes] = run_cli(
        root, *args, env=env, stdin=stdin, text=False
    )
    return result


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("runc")
    require_platforms(*THREE.split(","))
    data = tmp_path_factory.mktemp("build") / "root"
    import_busybox(data)
    yield data
    assert list((data / "snapshots" / "active").iterdir()) == []
    assert list((data / "containers" / "bundles").iterdir()) == []


def context(tmp_path: Path, dockerfile: str, files: dict[str, str] | None = None) -> Path:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    for name, text in (files or {}).items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def rawjson_vertices(stderr: bytes) -> list[dict[str, object]]:
    vertices = []
    for line in stderr.decode().splitlines():
        if line.startswith("{"):
            vertices.extend(json.loads(line).get("vertexes") or [])
    return vertices


def test_seed_example_three_platforms(root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, SEED)
    proc = polybuild(
        root, "build", "--platform", THREE, "-t", "seed", "--load", "--progress=rawjson", str(ctx)
    )
    assert proc.returncode == 0, proc.stderr.decode()
    runs = [
        v
        for v in rawjson_vertices(proc.stderr)
        if "RUN echo" in str(v.get("name")) and v.get("completed")
    ]
    assert len(runs) == 3  # TARGETPLATFORM is read: one run per target ...
    assert {v["platform"] for v in runs} == {"linux/amd64"}  # ... all native, on the build platform
    assert not any(v.get("emulated") for v in runs)
    for platform, machine in (("linux/arm/v7", "arm/v7"), ("linux/arm64", "arm64")):
        out = polybuild(root, "run", "--platform", platform, "seed", "cat", "/log")
        assert (
            out.stdout.decode().strip()
            == f"I am running on linux/amd64, building for linux/{machine}"
        )


def test_build_stage_without_target_args_runs_once(root: Path, tmp_path: Path) -> None:
    dockerfile = SEED.replace("building for $TARGETPLATFORM", "building once").replace(
        "ARG TARGETPLATFORM\n", ""
    )
    ctx = context(tmp_path, dockerfile + "RUN uname -m > /arch\n")
    proc = polybuild(
        root, "build", "--platform", THREE, "-t", "once", "--load", "--progress=rawjson", str(ctx)
    )
    assert proc.returncode == 0, proc.stderr.decode()
    vertices = rawjson_vertices(proc.stderr)
    runs = {v["digest"] for v in vertices if "RUN echo" in str(v.get("name"))}
    assert len(runs) == 1
    emulated = {v["name"]: v.get("emulated") for v in vertices if "uname" in str(v.get("name"))}
    assert sorted(emulated.values()) == [False, True, True]
    out = polybuild(root, "run", "--all-platforms", "once", "cat", "/arch")
    assert [line.split("|")[1].strip() for line in out.stdout.decode().splitlines()] == [
        "x86_64",
        "aarch64",
        "armv7l",
    ]


def own_steps(stderr: bytes) -> list[dict[str, object]]:
    """The Dockerfile's RUN/COPY steps of a rawjson progress (not BuildKit's [internal] and
    FROM steps, which load and resolve every time, cached or not)."""
    return [v for v in rawjson_vertices(stderr)
            if re.search(r"\] (RUN|COPY) ", str(v.get("name", "")))]  # fmt: skip


def test_rebuild_runs_no_container(root: Path, tmp_path: Path) -> None:
    ctx = context(
        tmp_path, "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b\n", {"a.txt": "one"}
    )
    args = ("build", "--platform", THREE, "--progress=rawjson", str(ctx))
    assert polybuild(root, *args).returncode == 0
    second = polybuild(root, *args)
    vertices = [v for v in own_steps(second.stderr) if v.get("completed")]
    assert vertices and all(v.get("cached") for v in vertices)
    assert b"build result will only remain in the build cache" in second.stderr.lower()
    # Touching the file (mtime only) keeps the cache; changing its content does not.
    os.utime(ctx / "a.txt", (1, 1))
    vertices = own_steps(polybuild(root, *args).stderr)
    assert all(v.get("cached") for v in vertices if v.get("completed"))
    (ctx / "a.txt").write_text("two")
    vertices = own_steps(polybuild(root, *args).stderr)
    assert not any(v.get("cached") for v in vertices if v.get("completed"))


def test_oci_archive_is_read_by_skopeo_and_umoci(root: Path, tmp_path: Path) -> None:
    skopeo, umoci = require_tool("skopeo"), require_tool("umoci")
    ctx = context(
        tmp_path,
        "FROM busybox\nRUN rm /etc/group && rm -rf /root && mkdir /root "
        "&& echo new > /root/file && uname -m > /arch\n",
    )
    out = tmp_path / "out.tar"
    proc = polybuild(root, "build", "--platform", THREE, "-o", f"type=oci,dest={out}", str(ctx))
    assert proc.returncode == 0, proc.stderr.decode()
    raw = subprocess.run(
        [skopeo, "inspect", "--raw", f"oci-archive:{out}"], capture_output=True, check=True
    ).stdout
    index = json.loads(raw)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    platforms = [
        "/".join(
            filter(
                None,
                (m["platform"]["os"], m["platform"]["architecture"], m["platform"].get("variant")),
            )
        )
        for m in index["manifests"]
    ]
    # the images, then buildx's default provenance for each (skopeo reads them as entries)
    assert platforms == [*THREE.split(","), *["unknown/unknown"] * 3]
    attested = [m["annotations"]["vnd.docker.reference.digest"] for m in index["manifests"][3:]]
    assert attested == [m["digest"] for m in index["manifests"][:3]]
    index["manifests"], platforms = index["manifests"][:3], platforms[:3]
    layout = tmp_path / "layout"
    with tarfile.open(out) as tar:
        tar.extractall(layout, filter="data")
    machines = []
    for entry, platform in zip(index["manifests"], platforms, strict=True):
        (layout / "index.json").write_text(
            json.dumps(
                {
                    "schemaVersion": 2,
                    "manifests": [
                        {**entry, "annotations": {"org.opencontainers.image.ref.name": "one"}}
                    ],
                }
            )
        )
        bundle = tmp_path / f"bundle-{platform.replace('/', '_')}"
        subprocess.run(
            [umoci, "unpack", "--image", f"{layout}:one", str(bundle)],
            capture_output=True,
            check=True,
        )
        rootfs = bundle / "rootfs"
        # The RUN's whiteouts, applied by umoci to the busybox base, give the tree it saw.
        assert not (rootfs / "etc" / "group").exists()
        assert sorted(p.name for p in (rootfs / "root").iterdir()) == ["file"]
        assert (rootfs / "bin" / "busybox").exists()
        machines.append((rootfs / "arch").read_text().strip())
    assert machines == ["x86_64", "aarch64", "armv7l"]


def test_source_date_epoch_gives_the_same_index_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    require_root()
    # The base image too must be the same both times (as when it comes from a registry).
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1600000000")
    ctx = context(tmp_path, "FROM busybox\nCOPY f /f\nRUN echo built > /built\n", {"f": "x"})
    digests = []
    for attempt in range(2):
        data = tmp_path / f"root{attempt}"
        import_busybox(data)
        if attempt == 1:
            # A build without the epoch first: its cached layers must not leak into the
            # reproducible build (the epoch is part of the cache key).
            plain = polybuild(
                data, "build", "--platform", THREE, str(ctx), env={"SOURCE_DATE_EPOCH": ""}
            )
            assert plain.returncode == 0, plain.stderr.decode()
        iid = tmp_path / f"iid{attempt}"
        proc = polybuild(
            data,
            "build",
            "--platform",
            THREE,
            "--iidfile",
            str(iid),
            "-o",
            f"type=oci,dest={tmp_path / f'o{attempt}.tar'}",
            # provenance records when the build ran and a fresh invocation id (BuildKit's
            # does too): an index that must be the same twice is built without it
            "--provenance=false",
            str(ctx),
            env={"SOURCE_DATE_EPOCH": "1700000000"},
        )
        assert proc.returncode == 0, proc.stderr.decode()
        digests.append(iid.read_text())
    assert digests[0] == digests[1] and digests[0].startswith("sha256:")


def test_secret_never_reaches_layers_config_or_cache(root: Path, tmp_path: Path) -> None:
    secret = "s3cr3t-" + os.urandom(8).hex()
    (tmp_path / "token").write_text(secret)
    import hashlib

    ctx = context(
        tmp_path,
        "FROM busybox\nRUN --mount=type=secret,id=token "
        "sha256sum /run/secrets/token | cut -c1-64 > /checked && "
        "grep ' /run/secrets/token ' /proc/self/mountinfo | sed 's/.* - //' > /fs\n",
    )
    proc = polybuild(
        root,
        "build",
        "--secret",
        f"id=token,src={tmp_path / 'token'}",
        "-t",
        "withsecret",
        "--load",
        str(ctx),
    )
    assert proc.returncode == 0, proc.stderr.decode()
    checked = polybuild(root, "run", "withsecret", "cat", "/checked").stdout
    assert checked.decode().strip() == hashlib.sha256(secret.encode()).hexdigest()
    assert polybuild(root, "run", "withsecret", "ls", "/run").stdout.strip() == b""
    # The file the step read was on a private tmpfs: the secret never touched a disk.
    filesystem = polybuild(root, "run", "withsecret", "cat", "/fs").stdout.decode()
    assert filesystem.startswith("tmpfs polybuild-secrets "), filesystem
    needle = secret.encode()
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            assert needle not in data, f"secret found in {path}"
            if data[:2] == b"\x1f\x8b":
                import gzip

                assert needle not in gzip.decompress(data), f"secret in layer {path}"
    # A required secret that is not given fails the build clearly.
    ctx = context(
        tmp_path,
        "FROM busybox\nRUN --mount=type=secret,id=token,required=true cat /run/secrets/token\n",
    )
    proc = polybuild(root, "build", str(ctx))
    assert proc.returncode != 0 and b"secret token not found" in proc.stderr


def test_dockerfile_errors_name_file_and_line(root: Path, tmp_path: Path) -> None:
    ctx = context(tmp_path, "FROM busybox\nRUNN echo hi\n")
    proc = polybuild(root, "build", str(ctx))
    assert proc.returncode == 1  # a failed build: buildx's 1
    assert b'Dockerfile:2: unknown instruction "RUNN"' in proc.stderr
    assert b"Traceback" not in proc.stderr
    ctx = context(tmp_path, "FROM nosuchimage\n")
    proc = polybuild(root, "build", str(ctx))
    assert proc.returncode != 0 and b"nosuchimage" in proc.stderr


@pytest.mark.parametrize("sig", ["SIGINT", "SIGHUP"])  # Ctrl-C; the terminal closed
def test_ctrl_c_stops_running_steps_at_once(root: Path, tmp_path: Path, sig: str) -> None:
    import signal
    import time

    mark = "pbt-ctrl-c-" + os.urandom(4).hex()  # this test's step, and no other process
    ctx = context(tmp_path, f"FROM busybox\nRUN sleep 120; echo {mark}\n")
    env = {**os.environ, "POLYBUILD_ROOT": str(root)}
    child = subprocess.Popen(
        [sys.executable, "-m", "polybuild", "build", "--no-cache", "--progress=plain", str(ctx)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while (
        mark.encode()
        not in subprocess.run(["ps", "-eo", "args"], capture_output=True, check=False).stdout
    ):
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.2)
    time.sleep(0.5)
    interrupted = time.monotonic()
    child.send_signal(getattr(signal, sig))
    child.wait(timeout=60)
    assert time.monotonic() - interrupted < 15
    assert child.returncode != 0
    assert list((root / "containers" / "bundles").iterdir()) == []
    assert str(root) not in Path("/proc/self/mounts").read_text()  # no overlay or netns left


def test_no_cache_filter_reruns_only_that_stage(root: Path, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox AS base\nRUN echo base > /base\nFROM base AS app\nRUN echo app > /app\n"
    )
    ctx = context(tmp_path, dockerfile)
    args = ("build", "--progress=rawjson", str(ctx))
    assert polybuild(root, *args).returncode == 0
    proc = polybuild(root, *args[:-1], "--no-cache-filter", "app", str(ctx))
    ran = {
        str(v["name"]) for v in own_steps(proc.stderr) if v.get("completed") and not v.get("cached")
    }
    assert ran == {"[app 1/1] RUN echo app > /app"}  # FROM base: not counted, as BuildKit
