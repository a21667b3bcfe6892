"""What a BuildKit daemon may read of the Dockerfile's directory: only the Dockerfile and its
own .dockerignore, staged in a private directory (a daemon asking for the whole `dockerfile`
local never sees the files beside the Dockerfile)."""

from __future__ import annotations

from pathlib import Path

from polybuild.imagebuild.buildkit_driver import _dockerfile_build
from polybuild.imagebuild.request import make_request
from polybuild.platforms import parse


def test_the_daemon_is_served_only_the_dockerfile_not_its_neighbours(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    elsewhere = tmp_path / "etc-like"
    elsewhere.mkdir()
    (elsewhere / "build.Dockerfile").write_text("FROM scratch\n")
    (elsewhere / "build.Dockerfile.dockerignore").write_text("*.log\n")
    (elsewhere / "shadow").write_text("root:secret\n")  # must never reach the daemon
    request = make_request(ctx, dockerfile=elsewhere / "build.Dockerfile")
    staged = tmp_path / "staged"
    build = _dockerfile_build(request, (parse("linux/amd64"),), staged)
    assert build.dockerfile_dir == staged and build.filename == "build.Dockerfile"
    assert sorted(p.name for p in staged.iterdir()) == [
        "build.Dockerfile",
        "build.Dockerfile.dockerignore",
    ]
    assert staged.stat().st_mode & 0o777 == 0o700
    assert build.context == ctx.resolve()


def test_a_dockerfile_from_stdin_is_staged_too(tmp_path: Path) -> None:
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "private.key").write_text("k")
    request = make_request(ctx, dockerfile_text=b"FROM scratch\n")
    staged = tmp_path / "staged"
    build = _dockerfile_build(request, (parse("linux/amd64"),), staged)
    assert [p.name for p in staged.iterdir()] == ["Dockerfile"]
    assert (staged / build.filename).read_bytes() == b"FROM scratch\n"
