"""Platforms: the Platform value, parsing and normalisation, matchers, and this host's platform.

>>> from polybuild.platforms import parse, only, only_strict
>>> str(parse("aarch64"))                      # one-part specifiers take the host's OS
'linux/arm64'
>>> only(parse("linux/arm64")).match(parse("linux/arm/v7"))
True
>>> only_strict(parse("linux/arm64")).match(parse("linux/arm/v7"))
False
"""

from __future__ import annotations

from polybuild.platforms._types import KNOWN_ARCH, KNOWN_OS, Platform, format_platform, normalize
from polybuild.platforms.host import default_platform, host_platform
from polybuild.platforms.matchers import (
    MatchComparer,
    Ordered,
    any_of,
    compatible_platforms,
    only,
    only_strict,
    ordered,
)
from polybuild.platforms.specifier import parse, parse_list

# `format` mirrors containerd's name; `format_platform` avoids shadowing the builtin in code.
format = format_platform


__all__ = [
    "KNOWN_ARCH",
    "KNOWN_OS",
    "MatchComparer",
    "Ordered",
    "Platform",
    "any_of",
    "compatible_platforms",
    "default_platform",
    "format",
    "format_platform",
    "host_platform",
    "normalize",
    "only",
    "only_strict",
    "ordered",
    "parse",
    "parse_list",
]
