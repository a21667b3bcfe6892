"""A build's name as buildx gives it (util/history BuildName): BUILDKIT_BUILD_NAME, else
the context directory's name (with the Dockerfile's path below it when that is not the
default), a remote context as given, and ` (target)` after it."""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

_DEFAULT = "/Dockerfile"


def _remote(context: str) -> bool:
    return "://" in context or context.startswith("git@")


def build_name(
    context: str, dockerfile: str, target: str = "", build_args: Mapping[str, str] | None = None
) -> str:
    """`context` is the absolute context directory, a URL or `-`; `dockerfile` the absolute
    Dockerfile path, `-` (stdin) or ""."""
    given = (build_args or {}).get("BUILDKIT_BUILD_NAME", "")
    if given:
        return given
    remote = context if _remote(context) else ""
    local = "" if remote or context in ("", "-") else context
    path = "" if remote or dockerfile in ("", "-", "Dockerfile") else dockerfile
    default_name = path.endswith(_DEFAULT) or path == ""
    path = path.removesuffix(_DEFAULT)
    name = ""
    if path.startswith(local) and len(path) > len(local):
        name = path[local.rfind("/") + 1 :]
    else:
        base = path or local
        if base:
            cut = base.rfind("/")
            name = base[cut + 1 :]
            if not default_name:
                parent = base[:cut] if cut != -1 else base
                name = posixpath.join(posixpath.basename(parent), name)
    if remote:
        name = remote
    if target:
        name = f"{name} ({target})" if name else target
    return name


__all__ = ["build_name"]
