"""Path resolution inside a root filesystem never leaves the root."""

from __future__ import annotations

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
