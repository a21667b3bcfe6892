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
    users' reach, whatever the modes inside. A root owned by another user is refused: they
    could swap its contents under us.
    """
    from polybuild.errors import PrivilegeError

    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(root)
    except OSError as exc:
        raise PrivilegeError(f"cannot create the data root {root}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode):
        raise PrivilegeError(f"the data root {root} is not a directory")
    if st.st_uid != os.geteuid():
        raise PrivilegeError(
            f"the data root {root} belongs to uid {st.st_uid}, not to us (uid {os.geteuid()})",
            hint="choose another POLYBUILD_ROOT",
        )
    if stat.S_IMODE(st.st_mode) != 0o700:
        os.chmod(root, 0o700)
    return root
