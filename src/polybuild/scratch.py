"""Private scratch directories in TMPDIR that a killed polybuild does not leave behind.

Each is named `polybuild-<kind>-<pid>-<random>`; making one first removes those whose
process is gone, so a `kill -9` in the middle of an export, an ADD of a URL or a probe
leaves nothing once the next such command has run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from polybuild.syscalls import pid_alive

# A unix socket's path must fit in sun_path (108 bytes with its NUL): a long $TMPDIR falls
# back to /tmp for directories that hold one (they are private either way).
MAX_SOCKET_DIR = 60


def socket_tmp() -> str:
    """Where to make a private directory for a unix socket: $TMPDIR unless it is too long."""
    base = tempfile.gettempdir()
    return base if len(base) <= MAX_SOCKET_DIR else "/tmp"


def remove_dead(kind: str, parent: Path | None = None) -> None:
    """Remove `polybuild-<kind>-<pid>-*` directories of processes that no longer exist."""
    parent = parent or Path(tempfile.gettempdir())
    prefix = f"polybuild-{kind}-"
    for path in parent.glob(prefix + "*-*"):
        pid = path.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)) and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch_dir(kind: str) -> Iterator[Path]:
    """A new 0700 directory in TMPDIR for this process, removed when the block ends."""
    remove_dead(kind)
    with tempfile.TemporaryDirectory(prefix=f"polybuild-{kind}-{os.getpid()}-") as tmp:
        yield Path(tmp)
