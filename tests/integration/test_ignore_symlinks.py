""".dockerignore through symlinks, end to end: an ignored file is as absent as BuildKit makes it.

BuildKit's client never sends an ignored file, so a COPY source that reaches one through a
symlink (directly, by a wildcard, through a linked directory, at any depth) is "not found",
a link copied inside a directory dangles, and a link out of the context resolves inside it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_platforms, require_root, require_tool
from tests.conftest import run_cli as polybuild

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

SECRET = "TOP-SECRET-BYTES-4711"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("runc")
    require_platforms("linux/amd64")
    data = tmp_path_factory.mktemp("ignore-links") / "root"
    import_busybox(data, ("amd64",))
    yield data


def make_context(tmp_path: Path, dockerfile: str) -> Path:
    """A context whose ignored secrets are reachable through every kind of symlink."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key").write_text(SECRET)
    ctx = tmp_path / "ctx"
    (ctx / "secrets").mkdir(parents=True)
    (ctx / "app" / "deep").mkdir(parents=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / ".dockerignore").write_text("secret.env\nsecrets\n")
    (ctx / "secret.env").write_text(SECRET)
    (ctx / "secrets" / "key").write_text(SECRET)
    (ctx / "app" / "main.sh").write_text("echo hi\n")
    links = {
        "alias": "secret.env",
        "linkdir": "secrets",
        "app/deep/nested": "../../alias",
        "escape_rel": "../outside/key",
        "escape_far": "../../../../../../outside/key",
        "escape_abs": str(outside / "key"),
        "escape_host": "/etc/hostname",
    }
    for name, target in links.items():
        os.symlink(target, ctx / name)
    return ctx


def build(root: Path, ctx: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return polybuild(root, "build", "--no-cache", "-o", f"type=local,dest={out}", str(ctx))


def secret_bytes_in(out: Path) -> list[str]:
    """Files below `out` holding the secret (links are read as links, never followed)."""
    found: list[str] = []
    for dirpath, _, filenames in os.walk(out):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink() and path.is_file() and SECRET.encode() in path.read_bytes():
                found.append(str(path.relative_to(out)))
    return found


@pytest.mark.parametrize(
    ("line", "missing"),
    [
        ("COPY alias /x", "/alias"),
        ("COPY ali* /x/", "/alias"),
        ("COPY linkdir/key /x", "/linkdir/key"),
        ("COPY linkdir /x/", "/linkdir"),
        ("COPY app/deep/nested /x", "/app/deep/nested"),
        ("COPY app/*/nested /x/", "/app/deep/nested"),
        ("ADD alias /x", "/alias"),
        ("COPY --parents linkdir/./key /x/", "/linkdir/key"),
    ],
)
def test_copy_through_a_link_to_an_ignored_path_fails(
    root: Path, tmp_path: Path, line: str, missing: str
) -> None:
    ctx = make_context(tmp_path, f"FROM busybox\n{line}\n")
    out = tmp_path / "out"
    proc = build(root, ctx, out)
    assert proc.returncode != 0, f"{line} succeeded: {secret_bytes_in(out)}"
    assert f'"{missing}": not found' in proc.stderr, proc.stderr
    assert SECRET not in proc.stderr
    assert secret_bytes_in(out) == []


@pytest.mark.parametrize("name", ["escape_rel", "escape_far", "escape_abs", "escape_host"])
def test_link_out_of_the_context_resolves_inside_it(root: Path, tmp_path: Path, name: str) -> None:
    ctx = make_context(tmp_path, f"FROM busybox\nCOPY {name} /x\n")
    out = tmp_path / "out"
    proc = build(root, ctx, out)
    assert proc.returncode != 0
    assert f'"/{name}": not found' in proc.stderr, proc.stderr
    assert secret_bytes_in(out) == []


def test_links_in_a_copied_directory_and_a_bind_mount_see_no_secret(
    root: Path, tmp_path: Path
) -> None:
    dockerfile = (
        "FROM busybox\n"
        "COPY . /ctx/\n"
        "RUN --mount=type=bind,target=/src sh -c "
        "'cat /src/alias /src/linkdir/key /src/app/deep/nested /src/escape_abs > /seen 2>&1; "
        "ls -a /src > /listed; true'\n"
    )
    ctx = make_context(tmp_path, dockerfile)
    out = tmp_path / "out"
    proc = build(root, ctx, out)
    assert proc.returncode == 0, proc.stderr
    assert os.readlink(out / "ctx" / "alias") == "secret.env"  # kept as a link, dangling
    assert os.readlink(out / "ctx" / "linkdir") == "secrets"
    assert not (out / "ctx" / "secret.env").exists() and not (out / "ctx" / "secrets").exists()
    listed = (out / "listed").read_text().split()
    assert "alias" in listed and "secret.env" not in listed and "secrets" not in listed
    assert secret_bytes_in(out) == []


def test_bind_mount_source_through_a_link_to_an_ignored_file_fails(
    root: Path, tmp_path: Path
) -> None:
    dockerfile = "FROM busybox\nRUN --mount=type=bind,source=alias,target=/s cat /s > /seen\n"
    ctx = make_context(tmp_path, dockerfile)
    out = tmp_path / "out"
    proc = build(root, ctx, out)
    assert proc.returncode != 0
    assert "not found" in proc.stderr or "does not exist" in proc.stderr, proc.stderr
    assert secret_bytes_in(out) == []
