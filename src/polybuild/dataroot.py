"""Where polybuild keeps its state: one data root for the content store, images and caches."""

from __future__ import annotations

import os
import stat
from pathlib import Path

SYSTEM_ROOT = Path("/var/lib/polybuild")


def data_root() -> Path:
    """The data root: $POLYBUILD_ROOT, else /var/lib/polybuild for root, else the XDG data dir.

    The directory is not created here; the stores that live in it create what they use.
    """
    override = os.environ.get("POLYBUILD_ROOT")
    if override:
        return Path(override).absolute()
    if os.geteuid() == 0:
        return SYSTEM_ROOT
    import platformdirs  # lazy: only needed for unprivileged users

    return Path(platformdirs.user_data_dir("polybuild", appauthor=False))


def make_private(root: Path) -> Path:
    """Create the data root, or make an existing one private: 0700, owned by us.

    Everything under it (unpacked layers with set-id files and device nodes from images,
    bundles whose config.json holds secrets, the build cache) is then out of other local
    users' reach, whatever the modes inside. A symlinked root is resolved once; the directory
    is then opened without following links and changed through that descriptor, so it
    cannot be swapped for a link in between. Returns the resolved path.
    Refused: a root owned by another user (they could swap its contents under us) and a
    shared directory such as /tmp (world-writable or sticky), which must not become 0700.
    """
    from polybuild.errors import PrivilegeError

    root = Path(os.path.realpath(root))  # a symlinked root (another disk) is its target
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise PrivilegeError(f"cannot use the data root {root}: {exc.strerror}") from exc
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise PrivilegeError(
                f"the data root {root} belongs to uid {st.st_uid}, not to us (uid {os.geteuid()})",
                hint="choose another POLYBUILD_ROOT",
            )
        if st.st_mode & (stat.S_ISVTX | stat.S_IWOTH):
            raise PrivilegeError(
                f"the data root {root} is a shared directory (world-writable or sticky)",
                hint="point POLYBUILD_ROOT at a directory of its own inside it",
            )
        if stat.S_IMODE(st.st_mode) != 0o700:
            os.fchmod(fd, 0o700)
    finally:
        os.close(fd)
    return root
