"""The distribution of a root file system, from /etc/os-release (or /usr/lib/os-release)."""

from __future__ import annotations

import shlex

from polybuild.sbom.package import Distro

OS_RELEASE_PATHS = ("/etc/os-release", "/usr/lib/os-release")


def parse_os_release(data: bytes) -> Distro | None:
    """ID, VERSION_ID and ID_LIKE of an os-release file (shell-style KEY=value lines)."""
    values: dict[str, str] = {}
    for raw in data.decode("utf-8", "replace").splitlines():
        key, sep, value = raw.strip().partition("=")
        if not sep or key not in ("ID", "VERSION_ID", "ID_LIKE"):
            continue
        try:
            words = shlex.split(value, comments=True)
        except ValueError:
            continue
        values[key] = " ".join(words)
    distro_id = values.get("ID", "").strip().lower()
    if not distro_id or any(c.isspace() or c in "/?#@" for c in distro_id):
        return None
    return Distro(
        id=distro_id,
        version_id=values.get("VERSION_ID", "").strip(),
        id_like=tuple(values.get("ID_LIKE", "").lower().split()),
    )
