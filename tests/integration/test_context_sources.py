"""CONTEXT other than a local directory, end to end with `polybuild build`: `-` (a tar
archive in each compression buildx recognises, or a bare Dockerfile), git references served
by `git daemon` on 127.0.0.1, and HTTP(S) URLs served by a local http.server; hostile
archives refused; nothing left in TMPDIR; the same git and HTTP contexts fetched by a real
BuildKit daemon (the `context` frontend attribute)."""

from __future__ import annotations

import functools
import http.server
import io
import os
import socket
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon, buildkitd_factory  # noqa: F401 (fixture)
from tests.conftest import require, require_root, require_tool, run_cli

pytestmark = pytest.mark.root  # local builds run as root

COPY_ALL = "FROM scratch\nCOPY . /\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=mode) as tar:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A private TMPDIR, so a test sees every scratch directory polybuild leaves."""
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    return {"TMPDIR": str(tmp)}


def build(
    tmp_path: Path, env: dict[str, str], *args: str, stdin: bytes | None = None, local: bool = True
) -> tuple[subprocess.CompletedProcess[bytes], Path]:
    """`polybuild build ARGS` into a new `-o type=local` directory (unless not `local`)."""
    require_root()
    out = tmp_path / f"out{len(list(tmp_path.glob('out*')))}"
    output = ("-o", f"type=local,dest={out}") if local else ()
    done = run_cli(tmp_path / "root", "build", "--progress=plain", *output, *args, env=env,
                   stdin=stdin, text=False)  # fmt: skip
    assert list(Path(env["TMPDIR"]).iterdir()) == [], "a scratch directory was left behind"
    return done, out


def listing(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(out.rglob("*"))
    }


# -- `-`: stdin ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_stdin_tar_is_the_context(tmp_path: Path, env: dict[str, str], mode: str) -> None:
    archive = _tar({"Dockerfile": COPY_ALL.encode(), "sub/hello.txt": b"hello\n"}, mode)
    done, out = build(tmp_path, env, "-", stdin=archive)
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {
        "Dockerfile": COPY_ALL.encode(),
        "sub": b"<dir>",
        "sub/hello.txt": b"hello\n",
    }


def test_stdin_tar_with_f_names_a_file_in_it(tmp_path: Path, env: dict[str, str]) -> None:
    archive = _tar({"build/Containerfile": b"FROM scratch\nCOPY a.txt /a\n", "a.txt": b"a\n"})
    done, out = build(tmp_path, env, "-f", "build/Containerfile", "-", stdin=archive)
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {"a": b"a\n"}


def test_stdin_dockerfile_has_an_empty_context(tmp_path: Path, env: dict[str, str]) -> None:
    dockerfile = b"FROM scratch\nCOPY <<EOF /made\nmade here\nEOF\nCOPY . /ctx/\n"
    done, out = build(tmp_path, env, "-", stdin=dockerfile)
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {"ctx": b"<dir>", "made": b"made here\n"}


def test_stdin_for_both_context_and_dockerfile_is_refused(
    tmp_path: Path, env: dict[str, str]
) -> None:
    done, _ = build(tmp_path, env, "-f", "-", "-", stdin=COPY_ALL.encode())
    assert done.returncode != 0
    assert "can't use stdin for both build context and dockerfile" in done.stderr.decode(), (
        done.stderr.decode()
    )


def test_stdin_dockerfile_with_f_is_ambiguous(tmp_path: Path, env: dict[str, str]) -> None:
    done, _ = build(tmp_path, env, "-f", "Dockerfile", "-", stdin=COPY_ALL.encode())
    assert done.returncode != 0
    assert "ambiguous Dockerfile source: both stdin and flag correspond to Dockerfiles" in (
        done.stderr.decode()
    )


def test_empty_stdin_is_an_error(tmp_path: Path, env: dict[str, str]) -> None:
    done, _ = build(tmp_path, env, "-", stdin=b"")
    assert done.returncode == 1
    assert "CONTEXT '-': nothing on stdin" in done.stderr.decode()


def _hostile(kind: str) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        df = tarfile.TarInfo("Dockerfile")
        df.size = len(COPY_ALL)
        tar.addfile(df, io.BytesIO(COPY_ALL.encode()))
        info = tarfile.TarInfo({"dotdot": "../../escaped", "device": "dev"}.get(kind, "x"))
        if kind == "device":
            info.type = tarfile.CHRTYPE
            info.devmajor, info.devminor = 1, 3
        elif kind == "hardlink":
            info.type = tarfile.LNKTYPE
            info.linkname = "../../../etc/hostname"
        tar.addfile(info, io.BytesIO(b"") if kind == "dotdot" else None)
    return out.getvalue()


@pytest.mark.parametrize(
    ("kind", "said"),
    [
        ("dotdot", "entry '../../escaped': path '../../escaped' is outside extraction root"),
        ("device", "entry 'dev': unsupported tar entry type"),
        ("hardlink", "hard link target '../../../etc/hostname' is outside extraction root"),
    ],
)
def test_hostile_stdin_tar_is_refused(
    tmp_path: Path, env: dict[str, str], kind: str, said: str
) -> None:
    done, out = build(tmp_path, env, "-", stdin=_hostile(kind))
    assert done.returncode == 1
    assert "CONTEXT '-'" in done.stderr.decode() and said in done.stderr.decode()
    assert not out.exists()
    assert not (tmp_path.parent / "escaped").exists()


def test_symlinks_in_a_stdin_tar_stay_inside(tmp_path: Path, env: dict[str, str]) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in (("Dockerfile", COPY_ALL.encode()),):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc"
        tar.addfile(link)
        victim = tarfile.TarInfo("link/polybuild-context-test")
        victim.size = 3
        tar.addfile(victim, io.BytesIO(b"no\n"))
    done, out = build(tmp_path, env, "-", stdin=raw.getvalue())
    assert done.returncode == 0, done.stderr.decode()
    assert not Path("/etc/polybuild-context-test").exists()
    # resolved inside the context, as if chrooted there
    assert (out / "etc" / "polybuild-context-test").read_bytes() == b"no\n"
    assert os.readlink(out / "link") == "/etc"


# -- git -------------------------------------------------------------------------------


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.email=t@example.invalid", "-c", "user.name=t", *args],
        cwd=cwd, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


class GitServer:
    """`git daemon` serving `base` on a loopback port: `repo.git` (and `lib.git`)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"git://127.0.0.1:{self.port}/repo.git"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", "--listen=127.0.0.1",
             f"--port={self.port}", f"--base-path={self.base}", str(self.base)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                require(time.monotonic() < deadline, "git daemon did not start")
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def git_server(tmp_path: Path) -> Iterator[tuple[GitServer, str, str]]:
    """A repository with a Dockerfile at the top and in sub/, two commits (tag v1 on the
    first), served by git daemon; yields the server and the two commits."""
    require_tool("git")
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "Dockerfile").write_text(COPY_ALL)
    (work / "sub").mkdir()
    (work / "sub" / "Dockerfile").write_text("FROM scratch\nCOPY f /f\n")
    (work / "sub" / "f").write_text("one\n")
    (work / "out-link").symlink_to("/etc")
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "one", cwd=work)
    _git("tag", "-a", "v1", "-m", "v1", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "sub" / "f").write_text("two\n")
    _git("commit", "-qam", "two", cwd=work)
    second = _git("rev-parse", "HEAD", cwd=work)
    base = tmp_path / "served"
    base.mkdir()
    _git("clone", "-q", "--bare", str(work), str(base / "repo.git"), cwd=tmp_path)
    # branch with-lib: a submodule at lib/, its URL relative to the repository's
    lib = tmp_path / "lib"
    lib.mkdir()
    _git("init", "-q", "-b", "main", cwd=lib)
    (lib / "lib.txt").write_text("from the submodule\n")
    _git("add", ".", cwd=lib)
    _git("commit", "-qm", "lib", cwd=lib)
    _git("clone", "-q", "--bare", str(lib), str(base / "lib.git"), cwd=tmp_path)
    _git("checkout", "-q", "-b", "with-lib", cwd=work)
    _git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(base / "lib.git"),
         "lib", cwd=work)  # fmt: skip
    _git("config", "-f", ".gitmodules", "submodule.lib.url", "../lib.git", cwd=work)
    _git("commit", "-qam", "lib", cwd=work)
    _git("push", "-q", str(base / "repo.git"), "with-lib", cwd=work)
    server = GitServer(base)
    server.start()
    try:
        yield server, first, second
    finally:
        server.stop()


def test_git_context_default_branch(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, _, _ = git_server
    done, out = build(tmp_path, env, server.url)
    assert done.returncode == 0, done.stderr.decode()
    files = listing(out)
    assert files["sub/f"] == b"two\n" and files["Dockerfile"] == COPY_ALL.encode()
    assert ".git" not in files
    assert os.readlink(out / "out-link") == "/etc"


@pytest.mark.parametrize(
    ("suffix", "content"),
    [
        ("#main:sub", b"two\n"),
        ("#v1:sub", b"one\n"),
        ("?tag=v1&subdir=sub", b"one\n"),
        ("?branch=main&subdir=/sub/", b"two\n"),
    ],
)
def test_git_context_ref_and_subdir(
    tmp_path: Path,
    env: dict[str, str],
    git_server: tuple[GitServer, str, str],
    suffix: str,
    content: bytes,
) -> None:
    server, _, _ = git_server
    done, out = build(tmp_path, env, server.url + suffix)
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {"f": content}


def test_git_context_fetches_submodules(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, _, _ = git_server
    done, out = build(tmp_path, env, f"{server.url}#with-lib")
    assert done.returncode == 0, done.stderr.decode()
    files = listing(out)
    assert files["lib/lib.txt"] == b"from the submodule\n"
    assert "lib/.git" not in files and ".git" not in files
    done, out = build(tmp_path, env, f"{server.url}?branch=with-lib&submodules=false")
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out)["lib"] == b"<dir>" and not list((out / "lib").iterdir())


def test_git_context_keeps_git_dir_when_asked(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, first, _ = git_server
    done, out = build(
        tmp_path, env, "--build-arg", "BUILDKIT_CONTEXT_KEEP_GIT_DIR=1", f"{server.url}#v1"
    )
    assert done.returncode == 0, done.stderr.decode()
    assert _git("rev-parse", "HEAD", cwd=out) == first
    assert _git("remote", "get-url", "origin", cwd=out) == server.url
    assert (out / "sub" / "f").read_text() == "one\n"


def test_git_commit_is_fetched_once_into_the_cache(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, first, _ = git_server
    done, _ = build(tmp_path, env, f"{server.url}#{first}:sub")
    assert done.returncode == 0, done.stderr.decode()
    cached = list((tmp_path / "root" / "git").iterdir())
    assert [p for p in cached if p.is_dir()], "no cache repository in <data root>/git"
    server.stop()  # the commit is named by its hash: the cache alone serves it now
    again, out = build(tmp_path, env, f"{server.url}#{first}:sub")
    assert again.returncode == 0, again.stderr.decode()
    assert listing(out) == {"f": b"one\n"}


@pytest.mark.parametrize(
    ("suffix", "said"),
    [
        ("#nosuch", "the remote has no ref 'nosuch'"),
        ("#main:out-link", "subdirectory 'out-link' leads out of the repository"),
        ("#main:missing", "subdirectory 'missing' is not a directory"),
    ],
)
def test_git_context_errors(
    tmp_path: Path,
    env: dict[str, str],
    git_server: tuple[GitServer, str, str],
    suffix: str,
    said: str,
) -> None:
    server, _, _ = git_server
    done, out = build(tmp_path, env, server.url + suffix)
    assert done.returncode == 1
    assert f"ERROR: CONTEXT '{server.url}{suffix}': {said}" in done.stderr.decode()
    assert not out.exists()


def test_git_errors_carry_gits_words(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, _, _ = git_server
    url = server.url.replace("repo.git", "missing.git")
    done, _ = build(tmp_path, env, url)
    assert done.returncode == 1
    err = done.stderr.decode()
    assert f"ERROR: CONTEXT '{url}': git ls-remote failed: fatal: remote error:" in err, err


# -- HTTP(S) ---------------------------------------------------------------------------


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1, and its base URL."""
    served = tmp_path / "www"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_tarball_is_the_context(
    tmp_path: Path, env: dict[str, str], http_root: tuple[Path, str]
) -> None:
    served, base = http_root
    (served / "ctx.tar.gz").write_bytes(
        _tar({"Dockerfile": COPY_ALL.encode(), "a/b.txt": b"b\n"}, "w:gz")
    )
    done, out = build(tmp_path, env, f"{base}/ctx.tar.gz")
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {"Dockerfile": COPY_ALL.encode(), "a": b"<dir>", "a/b.txt": b"b\n"}


def test_http_file_that_is_no_archive_is_the_dockerfile(
    tmp_path: Path, env: dict[str, str], http_root: tuple[Path, str]
) -> None:
    served, base = http_root
    (served / "Dockerfile").write_text("FROM scratch\nCOPY context /got\n")
    done, out = build(tmp_path, env, f"{base}/Dockerfile")
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {"got": b"FROM scratch\nCOPY context /got\n"}


def test_http_errors_name_the_status(
    tmp_path: Path, env: dict[str, str], http_root: tuple[Path, str]
) -> None:
    _, base = http_root
    done, out = build(tmp_path, env, f"{base}/missing.tar")
    assert done.returncode == 1
    assert f"ERROR: CONTEXT '{base}/missing.tar': HTTP 404 File not found" in (done.stderr.decode())
    assert not out.exists()


def test_http_hostile_tarball_is_refused(
    tmp_path: Path, env: dict[str, str], http_root: tuple[Path, str]
) -> None:
    served, base = http_root
    (served / "bad.tar").write_bytes(_hostile("dotdot"))
    done, _ = build(tmp_path, env, f"{base}/bad.tar")
    assert done.returncode == 1
    assert f"CONTEXT '{base}/bad.tar': archive " in done.stderr.decode()
    assert "outside extraction root" in done.stderr.decode()


# -- a BuildKit daemon fetches git and HTTP contexts itself ----------------------------


@pytest.mark.integration
def test_daemon_fetches_git_and_http_contexts(
    tmp_path: Path,
    env: dict[str, str],
    git_server: tuple[GitServer, str, str],
    http_root: tuple[Path, str],
    buildkitd_factory: Callable[..., BuildkitDaemon],  # noqa: F811
) -> None:
    server, _, _ = git_server
    served, base = http_root
    (served / "ctx.tar").write_bytes(_tar({"Dockerfile": COPY_ALL.encode(), "h": b"http\n"}))
    daemon = buildkitd_factory("")
    root = tmp_path / "root"
    created = run_cli(root, "create", "--name", "bkctx", "--driver", "remote", daemon.address)
    assert created.returncode == 0, created.stderr
    # -o type=tar: the daemon fetches the context and its exporter writes the output
    for url, names in ((f"{server.url}#v1:sub", ["f"]), (f"{base}/ctx.tar", ["Dockerfile", "h"])):
        tarball = tmp_path / "fs.tar"
        done, _ = build(tmp_path, env, "--builder", "bkctx", "-o", f"type=tar,dest={tarball}",
                        url, local=False)  # fmt: skip
        assert done.returncode == 0, done.stderr.decode()
        with tarfile.open(tarball) as tar:
            assert sorted(tar.getnames()) == names
        assert f"load git source {url}" in done.stderr.decode() or "http" in url
    assert not (root / "git").exists(), "the daemon fetches git contexts, not polybuild"
    # -f - with a remote context: the Dockerfile from stdin, the files from the remote
    done, _ = build(tmp_path, env, "--builder", "bkctx", "-o", f"type=tar,dest={tarball}",
                    "-f", "-", f"{server.url}#main", stdin=b"FROM scratch\nCOPY sub/f /f\n",
                    local=False)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    with tarfile.open(tarball) as tar:
        assert tar.extractfile("f").read() == b"two\n"  # type: ignore[union-attr]
    # -o type=local: the result comes back here, so the context is fetched here and sent
    done, out = build(tmp_path, env, "--builder", "bkctx", f"{server.url}#v1:sub")
    assert done.returncode == 0, done.stderr.decode()
    assert listing(out) == {"f": b"one\n"}


# -- ADD <git ref> ---------------------------------------------------------------------


def test_add_git_reference(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, first, _ = git_server
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM scratch\n"
        f"ADD {server.url}#v1:sub /one/\n"
        f"ADD {server.url}?branch=main&subdir=sub /two\n"
        f"ADD --keep-git-dir=true {server.url}#v1 /repo\n"
        f"ADD --checksum={first[:12]} {server.url}#v1 /checked/\n"
    )
    done, out = build(tmp_path, env, str(ctx))
    assert done.returncode == 0, done.stderr.decode()
    files = listing(out)
    assert files["one/f"] == b"one\n" and files["two/f"] == b"two\n"
    assert "one/.git" not in files and "checked/.git" not in files
    assert files["checked/sub/f"] == b"one\n"
    assert _git("rev-parse", "HEAD", cwd=out / "repo") == first
    again, _ = build(tmp_path, env, str(ctx))
    assert again.returncode == 0, again.stderr.decode()
    assert again.stderr.decode().count("CACHED") == 4, "the same commits are cached"


def test_add_git_errors(
    tmp_path: Path, env: dict[str, str], git_server: tuple[GitServer, str, str]
) -> None:
    server, _, second = git_server
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM scratch\nADD --checksum=0000 {server.url}#main /x/\n")
    done, _ = build(tmp_path, env, str(ctx))
    assert done.returncode == 1
    assert f"expected checksum to match 0000, got {second}" in done.stderr.decode()
    (ctx / "Dockerfile").write_text(f"FROM scratch\nADD {server.url}#nosuch /x/\n")
    done, _ = build(tmp_path, env, str(ctx))
    assert done.returncode == 1
    assert f"ADD {server.url}#nosuch /x/: {server.url}#nosuch: the remote has no ref 'nosuch'" in (
        done.stderr.decode()
    )
