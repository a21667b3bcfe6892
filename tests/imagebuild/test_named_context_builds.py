"""`--build-context` end to end on this machine's node with `polybuild build`: a directory
(`FROM NAME` as its root file system, `COPY --from`, `RUN --mount=from=`, its own
.dockerignore), a git reference served by `git daemon` on 127.0.0.1, an HTTP(S) URL served
on 127.0.0.1 (one file named `context`, never unpacked, as BuildKit), and an image of an
OCI layout (its config as the base's, a platform picked from its index, by tag or digest);
errors naming the flag; nothing left in TMPDIR."""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from polybuild.image import ImageStore
from polybuild.image.layout import export_dir
from tests.conftest import import_busybox, require_platforms, require_root, require_tool
from tests.integration.test_context_sources import (  # noqa: F401 (fixtures)
    GitServer,
    _tar,
    build,
    git_server,
    http_root,
)

pytestmark = [pytest.mark.root, pytest.mark.integration]


@pytest.fixture(scope="module")
def busybox_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with busybox for amd64 and arm64 (the base images of these builds)."""
    require_root()
    require_tool("runc")
    data = tmp_path_factory.mktemp("named") / "root"
    import_busybox(data, ("amd64", "arm64"))
    return data


@pytest.fixture
def tmp_env(tmp_path: Path) -> dict[str, str]:
    """A private TMPDIR, so a test sees every scratch directory polybuild leaves."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    return {"TMPDIR": str(tmp)}


def _build(
    root: Path, tmp_path: Path, tmp_env: dict[str, str], dockerfile: str, *flags: str
) -> tuple[str, Path, int]:
    ctx = tmp_path / f"ctx{len(list(tmp_path.glob('ctx*')))}"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "main.txt").write_text("main\n")
    (ctx / ".dockerignore").write_text("hidden-by-main\n")
    # The shared data root: build() names its own root after tmp_path, so link it there.
    if not (tmp_path / "root").exists():
        (tmp_path / "root").symlink_to(root)
    done, out = build(tmp_path, tmp_env, "--platform", "linux/amd64", *flags, str(ctx))
    return done.stderr.decode(), out, done.returncode


def test_a_directory_is_a_root_file_system_a_copy_source_and_a_mount(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str], busybox_rootfs: object
) -> None:
    rootfs = busybox_rootfs("amd64")  # type: ignore[operator]
    tools = tmp_path / "tools"
    (tools / "sub").mkdir(parents=True)
    (tools / "sub" / "tool.txt").write_text("tool\n")
    (tools / "hidden-by-main").write_text("the main context's .dockerignore is not its\n")
    (tools / "secret").write_text("never sent\n")
    (tools / ".dockerignore").write_text("secret\n")
    dockerfile = (
        "FROM rootfs AS made\n"
        "RUN echo ran > /ran\n"
        "FROM busybox\n"
        "COPY --from=tools / /tools/\n"
        "RUN --mount=from=tools,target=/m ls -a /m > /listing\n"
        "COPY --from=made /ran /ran\n"
    )
    err, out, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                            "--build-context", f"tools={tools}",
                            "--build-context", f"rootfs={rootfs}")  # fmt: skip
    assert code == 0, err
    assert (out / "ran").read_text() == "ran\n"  # RUN on the directory's busybox
    assert (out / "tools" / "sub" / "tool.txt").read_text() == "tool\n"
    assert (out / "tools" / "hidden-by-main").exists()
    assert not (out / "tools" / "secret").exists()
    listing = (out / "listing").read_text().split()
    assert "secret" not in listing and "sub" in listing and ".dockerignore" in listing
    assert "[context tools] load from client" not in err  # only FROM NAME loads it as a step
    assert "[context rootfs] load from client" in err
    assert "[made 2/2] RUN echo ran > /ran" not in err and "[made 1/1] RUN echo ran" in err


def test_a_stage_of_that_name_is_replaced_and_links_stay_inside(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str]
) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "f").write_text("named\n")
    os.chown(extra / "f", 1234, 5678)  # buildx's client sends every local file as 0:0
    (extra / "out-link").symlink_to("/etc")
    dockerfile = "FROM busybox AS extra\nRUN false\nFROM busybox\nCOPY --from=extra / /x/\n"
    err, out, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                            "--build-context", f"extra={extra}")  # fmt: skip
    assert code == 0, err  # the stage, and its failing RUN, replaced
    assert (out / "x" / "f").read_text() == "named\n"
    assert ((out / "x" / "f").stat().st_uid, (out / "x" / "f").stat().st_gid) == (0, 0)
    assert os.readlink(out / "x" / "out-link") == "/etc"
    assert not (out / "x" / "passwd").exists()


def test_a_git_reference_is_its_checkout(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str],
    git_server: tuple[GitServer, str, str],  # noqa: F811
) -> None:  # fmt: skip
    server, _, _ = git_server
    dockerfile = "FROM busybox\nCOPY --from=src f /f\nCOPY --from=all / /all/\n"
    err, out, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                            "--build-context", f"src={server.url}#v1:sub",
                            "--build-context", f"all={server.url}")  # fmt: skip
    assert code == 0, err
    assert (out / "f").read_text() == "one\n"
    assert (out / "all" / "sub" / "f").read_text() == "two\n"
    assert not (out / "all" / ".git").exists()
    assert os.readlink(out / "all" / "out-link") == "/etc"
    err, _, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                          "--build-context", f"src={server.url}#nosuch",
                          "--build-context", f"all={server.url}")  # fmt: skip
    assert code != 0
    assert f"--build-context src={server.url}#nosuch" in err, err


def test_an_http_url_is_one_file_named_context(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str],
    http_root: tuple[Path, str],  # noqa: F811
) -> None:  # fmt: skip
    served, base = http_root
    archive = _tar({"a.txt": b"a\n"}, "w:gz")
    (served / "files.tar.gz").write_bytes(archive)
    os.utime(served / "files.tar.gz", (1_600_000_000, 1_600_000_000))  # its Last-Modified
    dockerfile = "FROM busybox\nCOPY --from=dl context /got\n"
    err, out, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                            "--build-context", f"dl={base}/files.tar.gz")  # fmt: skip
    assert code == 0, err
    assert (out / "got").read_bytes() == archive  # not unpacked, as BuildKit's llb.HTTP
    assert stat.S_IMODE((out / "got").stat().st_mode) == 0o600
    assert (out / "got").stat().st_mtime == 1_600_000_000  # as BuildKit's http source
    err, _, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                          "--build-context", f"dl={base}/missing.tar.gz")  # fmt: skip
    assert code != 0
    assert f"--build-context dl={base}/missing.tar.gz: HTTP 404" in err, err


@pytest.fixture(scope="module")
def layout(busybox_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An OCI layout of an image made FROM busybox for amd64 and arm64 (ENV, WORKDIR and a
    file per platform), tagged v1; and its index digest."""
    require_platforms("linux/amd64", "linux/arm64")
    src = tmp_path_factory.mktemp("layout-src")
    (src / "Dockerfile").write_text(
        "FROM busybox\nARG TARGETARCH\nRUN echo $TARGETARCH > /arch\n"
        "ENV FROM_LAYOUT=yes\nWORKDIR /w\n"
    )
    archive = src / "l.tar"
    from tests.conftest import run_cli

    done = run_cli(busybox_root, "build", "--platform", "linux/amd64,linux/arm64",
                   "-o", f"type=oci,dest={archive},name=example.test/l:v1", str(src))  # fmt: skip
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("layout") / "l"
    with tarfile.open(archive) as tar:
        tar.extractall(path, filter="data")
    (entry,) = json.loads((path / "index.json").read_text())["manifests"]
    return path, entry["digest"]


@pytest.mark.qemu  # the layout's arm64 image is built under QEMU
def test_an_oci_layout_image_is_a_base_image_per_platform(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str], layout: tuple[Path, str]
) -> None:
    path, digest = layout
    dockerfile = "FROM base\nRUN cat /arch > /got && echo $FROM_LAYOUT > /env && pwd > /pwd\n"
    for value in (f"{path}:v1", f"{path}@{digest}"):
        err, out, code = _build(busybox_root, tmp_path, tmp_env, dockerfile,
                                "--platform", "linux/amd64,linux/arm64",
                                "--build-context", f"base=oci-layout://{value}")  # fmt: skip
        assert code == 0, err
        for arch in ("amd64", "arm64"):
            assert (out / f"linux_{arch}" / "got").read_text() == f"{arch}\n"
            assert (out / f"linux_{arch}" / "env").read_text() == "yes\n"
            assert (out / f"linux_{arch}" / "pwd").read_text() == "/w\n"
    # The image is known by BuildKit's NAME@DIGEST, never named in this machine's store.
    assert f"FROM docker.io/library/base@{digest}" in err
    assert not any("base" in str(r.name) for r in ImageStore(busybox_root).records())


@pytest.mark.qemu  # the layout's arm64 image is built under QEMU
def test_oci_layout_errors_name_the_flag(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str], layout: tuple[Path, str]
) -> None:
    path, _ = layout
    for value, words in (
        (f"oci-layout://{tmp_path}", "is not an OCI image layout"),
        (f"oci-layout://{path}@sha256:{'0' * 64}", "has no image sha256:0000"),
    ):
        err, _, code = _build(busybox_root, tmp_path, tmp_env, "FROM base\n",
                              "--build-context", f"base={value}")  # fmt: skip
        assert code == 2, err
        assert f"--build-context base={value}: " in err and words in err, err


def test_a_layout_written_by_polybuild_itself_works_by_its_only_entry(
    busybox_root: Path, tmp_path: Path, tmp_env: dict[str, str]
) -> None:
    store = ImageStore(busybox_root)
    path = tmp_path / "plain"
    export_dir(path, store.content, [store.resolve("busybox").target])
    err, out, code = _build(busybox_root, tmp_path, tmp_env, "FROM b\nRUN echo ok > /ok\n",
                            "--build-context", f"b=oci-layout://{path}")  # fmt: skip
    assert code == 0, err
    assert (out / "ok").read_text() == "ok\n"
