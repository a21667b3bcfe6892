"""`--build-context` without a build: how the frontend looks names up (BuildKit's
normalised names), which graph a named directory makes, oci-layout values split and found
as buildx finds them (errors naming the flag, digests verified), and how named directories
travel to an ssh node and are checked there."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import msgspec
import pytest

from polybuild.dockerfile import BuildOptions, convert
from polybuild.dockerfile.named import NamedContexts, context_key, local_name
from polybuild.errors import UsageError
from polybuild.graph import Copy, ImageSource, LocalSource
from polybuild.image import ImageStore
from polybuild.image.layout import export_dir
from polybuild.imagebuild.build_contexts import parse_build_contexts
from polybuild.imagebuild.layout_context import import_layout_image, split_value
from polybuild.imagebuild.named_contexts import (
    exclude_patterns,
    frontend_dirs,
    frontend_images,
    solver_dirs,
)
from polybuild.imagebuild.remote_context import NAMED_DIR, make_solve, received_contexts
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse
from tests.conftest import import_busybox

AMD64 = parse("linux/amd64")


def test_names_match_as_buildkit_normalises_them() -> None:
    assert context_key("alpine") == context_key("docker.io/library/alpine:latest") == "alpine"
    assert context_key("alpine:3") == "alpine:3"
    assert context_key("reg.test:5000/x/y") == "reg.test:5000/x/y"
    named = NamedContexts({"docker.io/library/alpine": "r.test/a@sha256:" + "1" * 64},
                          {"Scratch": (), "tools": ("*.tmp",)})  # fmt: skip
    assert named.find("alpine:latest", AMD64, AMD64) == "r.test/a@sha256:" + "1" * 64
    tools = LocalSource(local_name("tools"), AMD64, ("*.tmp",))
    assert named.find("tools", AMD64, AMD64) == tools
    assert named.find("scratch", AMD64, AMD64) is None  # never a named context, as BuildKit
    assert named.find("context", AMD64, AMD64) is None
    assert named.find("other", AMD64, AMD64) is None
    # NAME::PLATFORM is looked up first, for that platform only
    arm64 = parse("linux/arm64")
    per_platform = NamedContexts({"alpine::linux/arm64": "r.test/arm", "alpine": "r.test/any"})
    assert per_platform.find("docker.io/library/alpine", AMD64, arm64) == "r.test/arm"
    assert per_platform.find("alpine", AMD64, AMD64) == "r.test/any"
    options = BuildOptions(named_images=dict(per_platform.images))
    assert convert("FROM alpine\n", options, arm64).target.base == "r.test/arm:latest"
    assert convert("FROM alpine\n", options, AMD64).target.base == "r.test/any:latest"


def test_a_named_directory_is_a_stage_root_and_a_copy_source() -> None:
    dockerfile = (
        "FROM tools AS t\nRUN make\n"
        "FROM alpine\nCOPY --from=tools /a /a\nCOPY --from=t /out /out\n"
        "RUN --mount=from=tools,target=/m true\n"
    )
    graph = convert(dockerfile, BuildOptions(named_dirs={"tools": ("x",)}), AMD64)
    sources = [op for op in graph.ops() if isinstance(op, LocalSource)]
    assert {s.name for s in sources} == {"named-context:tools"}  # one source, several uses
    assert sources[0].exclude == ("x",)
    stage = graph.stages[0]
    # FROM tools: its files copied into an empty root, with scratch's config
    root = stage.root
    assert root is not None and root.kind == "exec"
    base = root.rootfs  # type: ignore[union-attr]
    assert isinstance(base, Copy) and base.dest_base is None and base.source == sources[0]
    assert base.sources == (".",) and base.dest == "/"
    assert stage.config.config.working_dir == "/" and stage.base == "named-context:tools"
    assert not any(isinstance(op, ImageSource) and "tools" in op.ref for op in graph.ops())


def test_oci_layout_values_split_as_buildx_splits_them() -> None:
    digest = "sha256:" + "ab" * 32
    assert split_value("oci-layout:///l") == ("/l", "latest", "")
    assert split_value("oci-layout://./l:v1") == ("./l", "v1", "")
    assert split_value(f"oci-layout:///l@{digest}") == ("/l", "", digest)
    assert split_value(f"oci-layout:///l:v1@{digest}") == ("/l", "v1", digest)
    assert split_value("oci-layout:///a:b/l") == ("/a:b/l", "latest", "")  # no tag: a path


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """An OCI layout holding busybox for amd64 and arm64 (one index entry, tagged v1), and
    the digests of the index and of its amd64 manifest."""
    root = tmp_path_factory.mktemp("layout-src")
    import_busybox(root, ("amd64", "arm64"))
    store = ImageStore(root)
    record = store.resolve("busybox")
    path = tmp_path_factory.mktemp("layout") / "l"
    entry = record.target.with_annotations({"org.opencontainers.image.ref.name": "v1"})
    export_dir(path, store.content, [entry])
    amd64 = store.select("busybox", AMD64).descriptor.digest
    return path, str(record.target.digest), str(amd64)


def test_an_oci_layout_image_is_found_by_tag_digest_or_as_the_only_one(
    layout: tuple[Path, str, str],
) -> None:
    path, index, amd64 = layout
    for value, digest in (
        (f"oci-layout://{path}", index),  # latest: no such tag, so the only entry
        (f"oci-layout://{path}:v1", index),
        (f"oci-layout://{path}@{index}", index),
        (f"oci-layout://{path}@{amd64}", amd64),  # a manifest inside the index
    ):
        (named,) = parse_build_contexts([f"base={value}"])
        assert named.kind == "oci-layout" and named.layout is not None
        assert str(named.layout.descriptor.digest) == digest
        assert named.layout.ref == f"docker.io/library/base@{digest}"


def test_oci_layout_errors_name_the_flag(layout: tuple[Path, str, str], tmp_path: Path) -> None:
    path, index, _ = layout
    missing = "sha256:" + "0" * 64
    two = tmp_path / "two"
    two.mkdir()
    (two / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    entries = json.loads((path / "index.json").read_text())["manifests"] * 2
    (two / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))
    for value, words in (
        (f"oci-layout://{tmp_path}", "is not an OCI image layout"),
        (f"oci-layout://{path}@{missing}", f"has no image {missing}"),
        (f"oci-layout://{two}:v2", "has no image tagged 'v2'"),
        (f"oci-layout://{tmp_path / 'nothing'}", "is not an OCI image layout"),
    ):
        with pytest.raises(UsageError) as caught:
            parse_build_contexts([f"base={value}"])
        assert caught.value.message.startswith(f"--build-context base={value}: ")
        assert words in caught.value.message


def test_an_oci_layout_blob_is_verified_when_copied(
    layout: tuple[Path, str, str], tmp_path: Path
) -> None:
    path, _, amd64 = layout
    (named,) = parse_build_contexts([f"base=oci-layout://{path}@{amd64}"])
    assert named.layout is not None
    broken = tmp_path / "broken"
    shutil.copytree(path, broken)
    manifest = json.loads((broken / "blobs/sha256" / amd64.removeprefix("sha256:")).read_text())
    layer = broken / "blobs/sha256" / manifest["layers"][0]["digest"].removeprefix("sha256:")
    layer.chmod(0o644)
    data = bytearray(layer.read_bytes())
    data[len(data) // 2] ^= 0xFF
    layer.write_bytes(bytes(data))
    store = ImageStore(tmp_path / "store")
    moved = dataclasses.replace(named.layout, path=broken)
    with pytest.raises(UsageError, match=f"--build-context base=oci-layout://{path}@"):
        import_layout_image("base", named.value, moved, store.content)
    import_layout_image("base", named.value, named.layout, store.content)  # the good one
    assert store.content.exists(named.layout.descriptor.digest)


def test_a_named_directory_excludes_its_own_dockerignore(tmp_path: Path) -> None:
    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "ctx" / ".dockerignore").write_text("main-only\n")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / ".dockerignore").write_text("# comment\n/secret\n!keep\n")
    request = make_request(
        tmp_path / "ctx",
        platforms=["linux/amd64"],
        build_contexts=[f"extra={extra}", "img=docker-image://busybox"],
    )
    (named, _) = request.build_contexts
    assert exclude_patterns(named) == ("secret", "!keep")
    assert frontend_dirs(request) == {"extra": ("secret", "!keep")}
    assert frontend_images(request) == {"img": "busybox"}
    assert solver_dirs(request) == {"named-context:extra": extra.resolve()}


def test_named_directories_travel_in_the_context_to_an_ssh_node(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM extra\n")
    (ctx / "main.txt").write_text("main\n")
    extra = tmp_path / "extra"
    (extra / "sub").mkdir(parents=True)
    (extra / "sub" / "a.txt").write_text("a\n")
    (extra / "secret").write_text("s\n")
    (extra / ".dockerignore").write_text("secret\n")
    request = make_request(ctx, platforms=["linux/amd64"], build_contexts=[f"extra={extra}"])
    solve, files = make_solve(request, (AMD64,), 1)
    paths = {e.path for e in solve.context}
    assert {"main.txt", NAMED_DIR, f"{NAMED_DIR}/0", f"{NAMED_DIR}/0/sub/a.txt"} <= paths
    assert f"{NAMED_DIR}/0/secret" not in paths  # its own .dockerignore applied here
    assert solve.named_dirs == {"extra": "0"}
    assert solve.ignore_patterns[-1] == NAMED_DIR  # no part of the build context
    assert (extra / "sub" / "a.txt") in files.values()
    # The node: a real directory of the received context, its files taken as they came.
    node = tmp_path / "node"
    (node / NAMED_DIR / "0").mkdir(parents=True)
    (named,) = received_contexts(solve, node)
    assert named.directory == node / NAMED_DIR / "0" and named.exclude == ()
    (node / NAMED_DIR / "0").rmdir()
    (node / NAMED_DIR / "0").symlink_to("/")  # a link out of the context is refused
    with pytest.raises(UsageError, match="the client sent no directory for it"):
        received_contexts(solve, node)
    bad = msgspec.structs.replace(solve, named_dirs={"extra": "../x"})
    with pytest.raises(UsageError, match="bad named directory"):
        received_contexts(bad, node)


def test_a_context_with_the_reserved_directory_is_refused_for_a_node(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    (ctx / NAMED_DIR).mkdir(parents=True)
    (ctx / "Dockerfile").write_text("FROM extra\n")
    request = make_request(ctx, platforms=["linux/amd64"], build_contexts=[f"extra={tmp_path}"])
    with pytest.raises(UsageError, match=f"the build context has {NAMED_DIR}"):
        make_solve(request, (AMD64,), 1)
