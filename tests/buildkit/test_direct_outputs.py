"""A build on one BuildKit node whose outputs the daemon writes itself: a three-platform
`-o type=oci` is the daemon's file byte for byte (buildctl's, for the same build), written
beside its destination and renamed into place only when the build succeeded; `-o -` streams
to stdout; --metadata-file and --iidfile come from the exporters' response; the layers never
pass through this machine's store."""

from __future__ import annotations

import io
import json
import re
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon
from tests.conftest import SHARED, import_busybox, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

PLATFORMS = "linux/amd64,linux/arm64,linux/arm/v7"
EPOCH = "1700000000"
BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"


@pytest.fixture(scope="module")
def node(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BuildkitDaemon, str, Path]]:
    """A daemon pulling busybox (three platforms) from the test registry, and a client data
    root with a builder `bk` of that daemon alone."""
    require_root()
    root = tmp_path_factory.mktemp("bk-direct") / "root"
    base = f"{registry.host}/library/busybox:direct"
    import_busybox(root, ("amd64", "arm64", "armhf"), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    created = run_cli(root, "create", "--name", "bk", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    yield daemon, base, root


def context(tmp_path: Path, dockerfile: str) -> Path:
    ctx = tmp_path / "ctx"
    (ctx / "sub").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "sub" / "hello.txt").write_text("hello\n")
    return ctx


def stored_blobs(root: Path) -> set[str]:
    from polybuild.image import ImageStore

    blobs = ImageStore(root).content.root
    return {p.name for p in blobs.rglob("*") if p.is_file() and len(p.name) == 64}


def index_json(tarball: Path) -> dict[str, object]:
    with tarfile.open(tarball) as tar:
        member = tar.extractfile("index.json")
        assert member is not None
        found: dict[str, object] = json.loads(member.read())
        return found


def test_a_three_platform_oci_output_is_the_daemons_own(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    daemon, base, root = node
    ctx = context(tmp_path, f"FROM {base}\nCOPY . /ctx\n")
    before = stored_blobs(root)
    out, meta, iid = tmp_path / "out.tar", tmp_path / "meta.json", tmp_path / "iid"
    done = run_cli(root, "build", "--builder", "bk", "--platform", PLATFORMS,
                   "-t", "example.com/direct:1", "--progress", "plain",
                   "-o", f"type=oci,dest={out}", "--metadata-file", str(meta),
                   "--iidfile", str(iid), str(ctx),
                   env={"SOURCE_DATE_EPOCH": EPOCH})  # fmt: skip
    assert done.returncode == 0, done.stderr
    # the daemon's steps as buildx shows them: each platform's, no node
    for platform in PLATFORMS.split(","):
        assert f"[{platform} 2/2] COPY . /ctx\n" in done.stderr, done.stderr
    assert not re.search(r"^#\d+ .*bk0", done.stderr, re.MULTILINE), done.stderr
    # The same build by buildctl on the same daemon writes the same bytes.
    theirs = tmp_path / "buildctl.tar"
    subprocess.run(
        [BUILDCTL, "--addr", daemon.address, "build", "--frontend", "dockerfile.v0",
         "--local", f"context={ctx}", "--local", f"dockerfile={ctx}",
         "--opt", f"platform={PLATFORMS}", "--opt", f"build-arg:SOURCE_DATE_EPOCH={EPOCH}",
         "--output", f"type=oci,dest={theirs},name=example.com/direct:1,oci-mediatypes=true,"
         "rewrite-timestamp=true"],
        check=True, capture_output=True,
    )  # fmt: skip
    assert out.read_bytes() == theirs.read_bytes()
    top = index_json(out)["manifests"][0]  # type: ignore[index]
    assert top["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert top["annotations"]["io.containerd.image.name"] == "example.com/direct:1"
    metadata = json.loads(meta.read_text())
    assert metadata["containerimage.digest"] == top["digest"]
    assert metadata["containerimage.descriptor"]["digest"] == top["digest"]
    assert metadata["containerimage.descriptor"]["size"] == top["size"]
    assert iid.read_text() == top["digest"]  # several platforms: the index's digest
    assert stored_blobs(root) == before, "the result went through this machine's store"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.tar")] == []


def test_a_failed_build_writes_no_file_and_leaves_an_old_one(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    _, base, root = node
    ctx = context(tmp_path, f"FROM {base}\nRUN echo doomed; exit 3\n")
    new, old = tmp_path / "new.tar", tmp_path / "old.tar"
    old.write_bytes(b"the previous build's file")
    for dest in (new, old):
        done = run_cli(root, "build", "--builder", "bk", "--platform", "linux/amd64",
                       "-o", f"type=oci,dest={dest}", str(ctx))  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert "exit code: 3" in done.stderr
    assert not new.exists()
    assert old.read_bytes() == b"the previous build's file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "old.tar"]


def test_a_tar_to_stdout_streams_the_daemons_filesystem(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    _, base, root = node
    ctx = context(tmp_path, f"FROM {base}\nCOPY sub/hello.txt /greeting\n")
    done = run_cli(root, "build", "--builder", "bk", "--platform", "linux/amd64",
                   "--metadata-file", str(tmp_path / "meta.json"), "-o", "-", str(ctx),
                   text=False)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        member = tar.extractfile("greeting")
        assert member is not None
        assert member.read() == b"hello\n"
        assert "bin/busybox" in tar.getnames()
    assert json.loads((tmp_path / "meta.json").read_text()) == {}  # no image: no digest


def test_a_docker_archive_of_several_platforms_keeps_the_stores_path(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    """BuildKit's docker exporter refuses several platforms; polybuild's writes them."""
    _, base, root = node
    ctx = context(tmp_path, f"FROM {base}\nCOPY . /ctx\n")
    out = tmp_path / "docker.tar"
    done = run_cli(root, "build", "--builder", "bk", "--platform", "linux/amd64,linux/arm64",
                   "-t", "multi:1", "-o", f"type=docker,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    with tarfile.open(out) as tar:
        assert "manifest.json" in tar.getnames()
