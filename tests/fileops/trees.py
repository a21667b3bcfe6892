"""Helpers for fileops tests: build source trees and describe destination trees."""

from __future__ import annotations

import os
from pathlib import Path


def make_tree(root: Path, spec: dict[str, str | None]) -> Path:
    """Files (`name: content`), directories (`name/: None`) and symlinks (`name: "->target"`)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in spec.items():
        path = root / name.rstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            path.mkdir(exist_ok=True)
        elif content is not None and content.startswith("->"):
            os.symlink(content[2:], path)
        else:
            path.write_text(content or "")
    return root


def describe(root: Path) -> dict[str, str]:
    """`path: kind[:content]` for everything below `root` (f=file, d=dir, l=link)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "l:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "d"
            else:
                out[rel] = "f:" + path.read_text()
    return out
