"""Other local users cannot reach the data root: set-id files and device nodes from images,
secrets in runc bundles and the build cache are root's alone, as Docker keeps /var/lib/docker.

The data roots here live in a world-traversable directory (pytest's own temp dirs are 0700,
which would hide the attack).
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_root, require_tool
from tests.conftest import run_cli as polybuild

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

NOBODY = 65534
SECRET = "s3cr3t-from-env-0123456789"


@pytest.fixture
def public_dir() -> Iterator[Path]:
    """A directory every local user may traverse (0755 up to /)."""
    require_root()
    path = Path(tempfile.mkdtemp(prefix="pb-public-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    setpriv = require_tool("setpriv")
    return subprocess.run(
        [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *argv],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
    )


def nobody_can_open(path: Path) -> int:
    """0 if user nobody can open `path` for reading, else the errno it got."""
    code = (
        "import os, sys\n"
        "try:\n"
        f"    os.close(os.open({str(path)!r}, os.O_RDONLY | os.O_NONBLOCK))\n"
        "except OSError as e:\n"
        "    sys.exit(e.errno)\n"
    )
    return as_nobody("/usr/bin/python3", "-c", code).returncode


DANGEROUS = """
FROM busybox
RUN cp /bin/busybox /suid-shell && chmod 4755 /suid-shell && \
    mknod /null-dev c 1 3 && chmod 666 /null-dev
"""


def test_setuid_files_and_devices_in_layers_are_out_of_other_users_reach(
    public_dir: Path,
) -> None:
    require_tool("runc")
    root = public_dir / "root"
    import_busybox(root, ("amd64",))
    ctx = public_dir / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DANGEROUS)
    proc = polybuild(root, "build", "-t", "danger", "--load", str(ctx))
    assert proc.returncode == 0, proc.stderr
    found: list[Path] = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath, name)
            mode = os.lstat(path).st_mode
            if mode & stat.S_ISUID or stat.S_ISCHR(mode):
                found.append(path)
    assert any(p.name == "suid-shell" for p in found), found  # the step's layer is stored
    assert any(p.name == "null-dev" for p in found), found
    for path in found:
        assert nobody_can_open(path) == errno.EACCES, f"user nobody can open {path}"
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_store_files_are_private(public_dir: Path) -> None:
    root = public_dir / "root"
    import_busybox(root, ("amd64",))
    assert polybuild(root, "images").returncode == 0
    checked = 0
    for sub in ("content", "cache", "leases"):
        for dirpath, dirs, files in os.walk(root / sub):
            for name in [*dirs, *files]:
                mode = stat.S_IMODE(os.lstat(Path(dirpath, name)).st_mode)
                assert mode & 0o077 == 0 or name in dirs, f"{dirpath}/{name} is {oct(mode)}"
                checked += 1
    for name in ("images.json", "images.lock"):
        assert stat.S_IMODE((root / name).stat().st_mode) & 0o077 == 0, name
    assert checked > 0


def test_an_existing_open_data_root_is_made_private_on_start(public_dir: Path) -> None:
    root = public_dir / "root"
    import_busybox(root, ("amd64",))
    root.chmod(0o755)  # as data roots were made before
    (root / "images.json").chmod(0o644)
    assert nobody_can_open(root / "images.json") == 0
    proc = polybuild(root, "images")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert nobody_can_open(root / "images.json") == errno.EACCES


def test_a_data_root_owned_by_another_user_is_refused(public_dir: Path) -> None:
    root = public_dir / "theirs"
    root.mkdir()
    os.chown(root, NOBODY, NOBODY)
    proc = polybuild(root, "images")
    assert proc.returncode != 0
    assert f"the data root {root} belongs to uid {NOBODY}" in proc.stderr


def test_env_secrets_are_not_readable_while_a_step_runs(public_dir: Path) -> None:
    """The step's environment (with the secret) is in the runc bundle's config.json."""
    require_tool("runc")
    root = public_dir / "root"
    import_busybox(root, ("amd64",))
    ctx = public_dir / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(
        'FROM busybox\nRUN --mount=type=secret,id=tok,env=TOKEN sleep 3 && test -n "$TOKEN"\n'
    )
    seen: list[str] = []
    readable: list[str] = []
    argv_leaks: list[str] = []
    done = threading.Event()

    def watch() -> None:
        bundles = root / "containers" / "bundles"
        while not done.is_set():
            for config in bundles.glob("*/config.json") if bundles.exists() else ():
                seen.append(str(config))
                if nobody_can_open(config) == 0:
                    readable.append(str(config))
            for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
                try:
                    if SECRET.encode() in cmdline.read_bytes():
                        argv_leaks.append(str(cmdline))
                except OSError:
                    pass
            time.sleep(0.2)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        proc = polybuild(
            root,
            "build",
            "--secret",
            "id=tok,env=PB_TEST_TOKEN",
            "--no-cache",
            str(ctx),
            env={"PB_TEST_TOKEN": SECRET},
        )
    finally:
        done.set()
        watcher.join()
    assert proc.returncode == 0, proc.stderr
    assert seen, "the watcher never saw the running step's bundle"
    assert not readable, f"user nobody could read {readable}"
    assert not argv_leaks, f"the secret was in a command line: {argv_leaks}"


def test_a_shared_directory_is_refused_not_made_private(public_dir: Path) -> None:
    shared = public_dir / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # as /tmp
    proc = polybuild(shared, "images")
    assert proc.returncode != 0
    assert "is a shared directory" in proc.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_a_symlinked_data_root_is_its_target(public_dir: Path) -> None:
    target = public_dir / "disk2" / "polybuild"
    target.mkdir(parents=True, mode=0o755)
    (public_dir / "link").symlink_to(target)
    proc = polybuild(public_dir / "link", "images")
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(target.stat().st_mode) == 0o700
