"""Differential: the same build with a directory, an HTTP URL and a git reference as named
contexts, on this machine's node and on a real BuildKit v0.32.2 daemon (which fetches the
URL and the repository itself, over 127.0.0.1): the files they add to the image are equal
(names, types, modes, owners, sizes, bytes, link targets, times but a checkout's)."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from tests.buildkit.conftest import BuildkitDaemon, buildkitd_factory  # noqa: F401 (fixture)
from tests.buildkit.test_build_on_daemon import daemon_with_base  # noqa: F401 (a fixture)
from tests.conftest import run_cli
from tests.imagebuild.test_named_context_builds import (  # noqa: F401 (fixtures)
    GitServer,
    _tar,
    git_server,
    http_root,
)
from tests.registry.conftest import registry  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.root, pytest.mark.integration]


def _entries(archive: Path) -> dict[str, tuple[object, ...]]:
    """What `-o type=tar` wrote under /n/: each entry's kind, mode, owner, size, bytes, link
    target and time."""
    found: dict[str, tuple[object, ...]] = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.lstrip("./").rstrip("/")
            if not name.startswith("n/"):
                continue
            data = tar.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            # a checkout's times are when it was made, COPY's new directories (n/dir) when
            # the step ran: each build's own
            made = name.startswith("n/git/") or (member.isdir() and name.count("/") == 1)
            mtime = None if made else member.mtime
            found[name] = (member.type, oct(member.mode), member.uid, member.gid, member.size,
                           data, member.linkname, mtime)  # fmt: skip
    return found


def test_named_contexts_match_buildkits(
    daemon_with_base: tuple[BuildkitDaemon, str, Path],  # noqa: F811
    tmp_path: Path,
    git_server: tuple[GitServer, str, str],  # noqa: F811
    http_root: tuple[Path, str],  # noqa: F811
) -> None:
    daemon, base, root = daemon_with_base
    created = run_cli(root, "create", "--name", "bkdiff", "--driver", "remote", daemon.address)
    assert created.returncode == 0 or "exists" in created.stderr, created.stderr
    server, _, _ = git_server
    served, url = http_root
    (served / "f.tar.gz").write_bytes(_tar({"a.txt": b"a\n"}, "w:gz"))
    os.utime(served / "f.tar.gz", (1_600_000_000, 1_600_000_000))
    named = tmp_path / "dir"
    (named / "sub").mkdir(parents=True)
    (named / "sub" / "x.sh").write_text("#!/bin/sh\n")
    (named / "sub" / "x.sh").chmod(0o750)
    (named / "ro.txt").write_text("ro\n")
    (named / "ro.txt").chmod(0o400)
    (named / "link").symlink_to("sub/x.sh")
    (named / "skipped").write_text("ignored\n")
    (named / ".dockerignore").write_text("skipped\n")
    # Whole-second times: BuildKit's tar exporter reads its snapshot and rounds sub-second
    # times (Go's archive/tar), polybuild's reads its layers, which truncate them as
    # containerd's do (README: differences from BuildKit).
    for entry in [named, *named.rglob("*")]:
        os.utime(entry, ns=(1_700_000_000 * 10**9,) * 2, follow_symlinks=False)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        "FROM base\n"
        "COPY --from=dir / /n/dir/\n"
        "COPY --from=web context /n/web\n"
        "COPY --from=git / /n/git/\n"
    )
    results = {}
    for builder in ("default", "bkdiff"):
        out = tmp_path / f"{builder}.tar"
        done = run_cli(root, "build", "--builder", builder, "--platform", "linux/amd64",
                       "--build-context", f"base=docker-image://{base}",
                       "--build-context", f"dir={named}",
                       "--build-context", f"web={url}/f.tar.gz",
                       "--build-context", f"git={server.url}#v1:sub",
                       "-o", f"type=tar,dest={out}", str(ctx))  # fmt: skip
        assert done.returncode == 0, done.stderr
        results[builder] = _entries(out)
    ours, theirs = results["default"], results["bkdiff"]
    assert set(ours) == set(theirs)
    for name in sorted(ours):
        assert ours[name] == theirs[name], name
    assert "n/dir/skipped" not in ours and ours["n/web"][5] == (served / "f.tar.gz").read_bytes()
    assert io.BytesIO(ours["n/git/f"][5]).read() == b"one\n"
