"""Dockerfile semantics through real builds: RUN mounts, heredocs, COPY rules, config, outputs."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_platforms, require_root, require_tool
from tests.conftest import run_cli as polybuild

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("runc")
    require_platforms("linux/amd64", "linux/arm64")
    data = tmp_path_factory.mktemp("semantics") / "root"
    import_busybox(data, ("amd64", "arm64"))
    yield data


def make_context(tmp_path: Path, dockerfile: str, files: dict[str, str]) -> Path:
    ctx = tmp_path / "ctx"
    for name, text in {"Dockerfile": dockerfile, **files}.items():
        (ctx / name).parent.mkdir(parents=True, exist_ok=True)
        (ctx / name).write_text(text)
    return ctx


def build_local(root: Path, ctx: Path, out: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    return polybuild(root, "build", *flags, "-o", f"type=local,dest={out}", str(ctx))


RUN_MOUNTS = """\
FROM busybox AS tools
RUN echo from-stage > /tool.txt
FROM busybox
RUN --mount=type=cache,target=/cache sh -c 'echo run >> /cache/count; wc -l < /cache/count > /runs'
RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cp /mnt/data.txt /copied
RUN --mount=type=bind,from=tools,source=/tool.txt,target=/t cat /t > /from-stage
RUN --mount=type=tmpfs,target=/scratch \
    sh -c 'grep -q " /scratch tmpfs" /proc/mounts && echo tmpfs > /tmpfs-seen'
"""


def test_run_mounts(root: Path, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, RUN_MOUNTS, {"data.txt": "context data\n"})
    out = tmp_path / "out"
    proc = build_local(root, ctx, out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "runs").read_text().strip() == "1"
    assert (out / "copied").read_text() == "context data\n"
    assert (out / "from-stage").read_text() == "from-stage\n"
    assert (out / "tmpfs-seen").read_text() == "tmpfs\n"
    for mountpoint in ("cache", "scratch", "mnt", "t"):
        assert not (out / mountpoint).exists(), f"mount target /{mountpoint} leaked into the image"
    # The cache mount persists across builds (and is not part of the cache key).
    proc = build_local(root, ctx, tmp_path / "out2", "--no-cache")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out2" / "runs").read_text().strip() == "2"


COPY_RULES = """\
FROM busybox
WORKDIR /app
COPY --chmod=0750 script.sh ./bin/
COPY dir/ /copied/
COPY *.txt /texts/
COPY <<GREETING /etc/greeting
hello $USER_NAME
GREETING
ARG USER_NAME=world
RUN <<SCRIPT
set -e
echo "heredoc ran in $(pwd) for $USER_NAME" > /heredoc
SCRIPT
ADD archive.tar /unpacked/
"""


def test_heredocs_copy_rules_and_workdir(root: Path, tmp_path: Path) -> None:
    files = {
        "script.sh": "#!/bin/sh\n",
        "dir/a": "A",
        "dir/sub/b": "B",
        "one.txt": "1",
        "two.txt": "2",
        ".dockerignore": "two.txt\n",
    }
    ctx = make_context(tmp_path, COPY_RULES, files)
    with tarfile.open(ctx / "archive.tar", "w") as tar:
        tar.add(ctx / "dir" / "a", arcname="inside/a")
    out = tmp_path / "out"
    proc = build_local(root, ctx, out)
    assert proc.returncode == 0, proc.stderr
    script = out / "app" / "bin" / "script.sh"
    assert oct(script.stat().st_mode & 0o7777) == "0o750"
    copied = sorted(str(p.relative_to(out / "copied")) for p in (out / "copied").rglob("*"))
    assert copied == ["a", "sub", "sub/b"]
    assert sorted(p.name for p in (out / "texts").iterdir()) == ["one.txt"]  # two.txt ignored
    assert (out / "etc" / "greeting").read_text() == "hello \n"  # the ARG comes after the COPY
    assert (out / "heredoc").read_text() == "heredoc ran in /app for world\n"
    assert (out / "unpacked" / "inside" / "a").read_text() == "A"


CONFIGURED = """\
FROM busybox
ENV GREETING=hi
LABEL org.example.team=builders
EXPOSE 8080/tcp
USER nobody
WORKDIR /srv
HEALTHCHECK --interval=5s CMD true
STOPSIGNAL SIGTERM
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo $GREETING from $(pwd) as $(id -u)"]
"""


def test_config_and_history(root: Path, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, CONFIGURED, {})
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/arm64",
        "-t",
        "configured",
        "--load",
        "--label",
        "org.example.extra=1",
        str(ctx),
    )
    assert proc.returncode == 0, proc.stderr
    run = polybuild(root, "run", "configured")
    assert run.stdout.strip() == "hi from /srv as 65534"
    archive = tmp_path / "oci.tar"
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/arm64",
        "--label",
        "org.example.extra=1",
        "-o",
        f"type=oci,dest={archive}",
        str(ctx),
    )
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(archive) as tar:
        blobs = [f.read() for m in tar if m.isfile() and (f := tar.extractfile(m)) is not None]
    configs = [json.loads(b) for b in blobs if b.startswith(b"{") and b'"rootfs"' in b]
    assert len(configs) == 1
    config = configs[0]
    c = config["config"]
    assert config["architecture"] == "arm64"
    assert "GREETING=hi" in c["Env"] and c["User"] == "nobody" and c["WorkingDir"] == "/srv"
    assert c["Labels"] == {"org.example.team": "builders", "org.example.extra": "1"}
    assert c["ExposedPorts"] == {"8080/tcp": {}} and c["StopSignal"] == "SIGTERM"
    assert c["Healthcheck"]["Test"] == ["CMD-SHELL", "true"]  # shell form, as Docker
    assert c["Healthcheck"]["Interval"] == 5_000_000_000
    layers = [h for h in config["history"] if not h.get("empty_layer")]
    assert len(layers) == len(config["rootfs"]["diff_ids"])
    assert any(h["created_by"].startswith("WORKDIR /srv") for h in config["history"])


def test_local_and_docker_outputs(root: Path, tmp_path: Path) -> None:
    ctx = make_context(tmp_path, "FROM busybox\nRUN uname -m > /arch\n", {})
    out = tmp_path / "out"
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        f"type=local,dest={out}",
        str(ctx),
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["linux_amd64", "linux_arm64"]
    assert (out / "linux_arm64" / "arch").read_text() == "aarch64\n"
    docker_tar = tmp_path / "docker.tar"
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        f"type=docker,dest={docker_tar}",
        str(ctx),
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" in proc.stderr and "manifest.json" in proc.stderr
    skopeo = require_tool("skopeo")
    inspected = subprocess.run(
        [skopeo, "inspect", f"docker-archive:{docker_tar}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["Architecture"] == "amd64"


def test_scratch_link_onbuild_and_missing_base_variant(root: Path, tmp_path: Path) -> None:
    parent = make_context(tmp_path / "p", "FROM busybox\nONBUILD RUN uname -m > /onbuild\n", {})
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "-t",
        "onbase",
        "--load",
        str(parent),
    )
    assert proc.returncode == 0, proc.stderr
    dockerfile = (
        "FROM scratch AS bare\nCOPY a.txt /a.txt\n"
        "FROM onbase\nCOPY --link a.txt /linked.txt\nCOPY --from=bare /a.txt /from-scratch.txt\n"
    )
    child = make_context(tmp_path / "c", dockerfile, {"a.txt": "hi\n"})
    out = tmp_path / "out"
    proc = polybuild(
        root,
        "build",
        "--platform",
        "linux/amd64,linux/arm64",
        "-o",
        f"type=local,dest={out}",
        str(child),
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "linux_arm64" / "onbuild").read_text() == "aarch64\n"  # trigger ran
    assert (out / "linux_amd64" / "linked.txt").read_text() == "hi\n"
    assert (out / "linux_amd64" / "from-scratch.txt").read_text() == "hi\n"
    bare = tmp_path / "bare"
    proc = polybuild(root, "build", "--target", "bare", "-o", f"type=local,dest={bare}", str(child))
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in bare.iterdir()) == ["a.txt"]
    proc = polybuild(root, "build", "--platform", "linux/arm/v7", str(child))
    assert proc.returncode != 0
    assert (
        "Dockerfile:3: base image docker.io/library/onbase:latest has no variant for "
        "linux/arm/v7 (available: linux/amd64, linux/arm64)" in proc.stderr
    )


def test_tar_output_keeps_setuid_and_modes(root: Path, tmp_path: Path) -> None:
    ctx = make_context(
        tmp_path, "FROM busybox\nCOPY --chmod=4755 tool /usr/bin/tool\n", {"tool": "#!/bin/sh\n"}
    )
    out = tmp_path / "fs.tar"
    proc = polybuild(root, "build", "-o", f"type=tar,dest={out}", str(ctx))
    assert proc.returncode == 0, proc.stderr
    with tarfile.open(out) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    assert members["usr/bin/tool"].mode == 0o4755
    assert members["bin/busybox"].mode & 0o777 == 0o755
    assert "" not in members or members[""].mode & 0o777 == 0o755


def test_context_bind_mount_is_a_filtered_throwaway_view(root: Path, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox\n"
        "RUN --mount=type=bind,rw,target=/src sh -c "
        "'ls -a /src > /seen; cat /src/ver.txt > /ver; rm -f /src/keep.txt; echo x > /src/new'\n"
    )
    ctx = make_context(
        tmp_path,
        dockerfile,
        {"keep.txt": "k", ".env": "SECRET=1", "ver.txt": "v1", ".dockerignore": ".env\n"},
    )
    out = tmp_path / "out"
    proc = build_local(root, ctx, out)
    assert proc.returncode == 0, proc.stderr
    seen = (out / "seen").read_text().split()
    assert "keep.txt" in seen and ".env" not in seen  # .dockerignore applies to the mount
    assert (ctx / "keep.txt").read_text() == "k"  # rw writes never reach the user's files
    assert not (ctx / "new").exists()
    # The step depends on the context files it mounts: a change re-runs it.
    (ctx / "ver.txt").write_text("v2")
    proc = build_local(root, ctx, tmp_path / "out2")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out2" / "ver").read_text() == "v2"


def test_mount_stub_cleanup_keeps_what_the_step_wrote(root: Path, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox\nRUN --mount=type=tmpfs,target=/app/tmp mkdir -p /app/pkg && "
        "touch /app/pkg/__init__.py /app/.keep && echo x > /app/pkg/mod.py\n"
    )
    ctx = make_context(tmp_path, dockerfile, {})
    out = tmp_path / "out"
    proc = build_local(root, ctx, out)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (out / "app" / "pkg").iterdir()) == ["__init__.py", "mod.py"]
    assert (out / "app" / ".keep").exists()
    assert not (out / "app" / "tmp").exists()  # the mount point runc made is gone


def test_add_url_follows_the_remote_content(root: Path, tmp_path: Path) -> None:
    import functools
    import http.server
    import threading

    served = tmp_path / "www"
    served.mkdir()
    (served / "data.txt").write_text("v1")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/data.txt"
        ctx = make_context(tmp_path, f"FROM busybox\nADD {url} /data.txt\n", {})
        assert build_local(root, ctx, tmp_path / "a").returncode == 0
        assert (tmp_path / "a" / "data.txt").read_text() == "v1"
        (served / "data.txt").write_text("v2")
        assert build_local(root, ctx, tmp_path / "b").returncode == 0
        assert (tmp_path / "b" / "data.txt").read_text() == "v2"
    finally:
        server.shutdown()


def test_cache_mount_seeded_from_a_stage(root: Path, tmp_path: Path) -> None:
    dockerfile = (
        "FROM busybox AS seed\nRUN mkdir /seeddir && echo seeded > /seeddir/s\n"
        "FROM busybox\n"
        "RUN --mount=type=cache,id=seeded-once,target=/c,from=seed,source=/seeddir "
        "cat /c/s > /from-cache\n"
    )
    ctx = make_context(tmp_path, dockerfile, {})
    out = tmp_path / "out"
    proc = build_local(root, ctx, out)
    assert proc.returncode == 0, proc.stderr
    assert (out / "from-cache").read_text() == "seeded\n"
