"""Where fileops modules import FileOpError from; the class is defined in polybuild.errors."""

from __future__ import annotations

from polybuild.errors import FileOpError

__all__ = ["FileOpError"]
