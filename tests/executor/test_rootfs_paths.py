"""Path resolution inside a root filesystem never leaves the root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polybuild.rootfs import RootfsPathError, lookup_path, read_text_in_root, resolve_in_root


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "root"
    (r / "usr" / "bin").mkdir(parents=True)
    (r / "bin").symlink_to("usr/bin")
    (r / "abs").symlink_to("/usr")
    (r / "up").symlink_to("../../../..")
    (r / "loop").symlink_to("loop")
    (r / "usr" / "bin" / "tool").write_text("#!/bin/sh\n")
    (r / "usr" / "bin" / "tool").chmod(0o755)
    return r


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/bin/tool", "usr/bin/tool"),
        ("/abs/bin", "usr/bin"),
        ("/up/etc/shadow", "etc/shadow"),
        ("/../../etc/passwd", "etc/passwd"),
        ("bin/../bin/./tool", "usr/bin/tool"),
        ("/", ""),
    ],
)
def test_resolution_stays_inside(root: Path, path: str, expected: str) -> None:
    want = root.joinpath(*expected.split("/")) if expected else root
    assert resolve_in_root(root, path) == want


def test_symlink_loop_is_an_error(root: Path) -> None:
    with pytest.raises(RootfsPathError):
        resolve_in_root(root, "/loop/x")


def test_read_and_lookup(root: Path) -> None:
    assert read_text_in_root(root, "/bin/tool") == "#!/bin/sh\n"
    assert read_text_in_root(root, "/up/etc/shadow") is None
    assert lookup_path(root, "tool", "/sbin:/bin") == "/bin/tool"
    assert lookup_path(root, "missing", "/bin") is None
    assert lookup_path(root, "/x/y", "/bin") == "/x/y"


def test_reading_a_planted_special_file_never_opens_it(tmp_path: Path) -> None:
    """A step may leave a FIFO or a device node where we read /etc/passwd: opening a device
    can make the host's driver act, so only regular files are opened. A FIFO shows it: a
    writer waiting in open() is released only if somebody opens the FIFO for reading."""
    import threading

    (tmp_path / "etc").mkdir()
    fifo = tmp_path / "etc" / "passwd"
    os.mkfifo(fifo)
    released = threading.Event()

    def writer() -> None:
        fd = os.open(fifo, os.O_WRONLY)
        released.set()
        os.close(fd)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert read_text_in_root(tmp_path, "/etc/passwd") is None
    assert not released.wait(0.5), "the FIFO was opened for reading"
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # let the writer go
    thread.join(5)
