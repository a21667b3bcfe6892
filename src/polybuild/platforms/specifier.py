"""Parsing platform specifiers (`os/arch[/variant]`, `arch`, `os`) into normalised Platforms."""

from __future__ import annotations

import re

from polybuild.errors import PlatformError
from polybuild.platforms._types import KNOWN_ARCH, KNOWN_OS, Platform, normalize_arch, normalize_os
from polybuild.platforms.host import host_platform

_COMPONENT = re.compile(r"^[A-Za-z0-9_-]+$")


def _check_component(specifier: str, part: str, what: str) -> None:
    if not _COMPONENT.match(part):
        raise PlatformError(
            f"invalid platform {specifier!r}: {what} {part!r} is not valid",
            hint="write platforms as os/arch[/variant], for example linux/arm64 or linux/arm/v7",
        )


def parse(specifier: str) -> Platform:
    """Parse `os/arch[/variant]`, `arch` or `os` into a normalised Platform.

    One-part specifiers are filled from the host: `linux` -> the host's architecture,
    `arm64` -> the host's OS. Raises PlatformError for anything else.
    """
    spec = specifier.strip()
    if not spec or "*" in spec:
        raise PlatformError(
            f"invalid platform {specifier!r}",
            hint="write platforms as os/arch[/variant], for example linux/arm64 or linux/arm/v7",
        )
    parts = spec.split("/")
    for part, what in zip(parts, ("OS", "architecture", "variant"), strict=False):
        _check_component(specifier, part, what)
    if len(parts) == 1:
        word = parts[0].lower()
        if normalize_os(word) in KNOWN_OS:
            host = host_platform()
            return Platform(normalize_os(word), host.architecture, host.variant)
        arch, variant = normalize_arch(word, "")
        if arch in KNOWN_ARCH:
            return Platform(host_platform().os, arch, variant)
        raise PlatformError(
            f"invalid platform {specifier!r}: unknown operating system or architecture",
            hint="write platforms as os/arch[/variant], for example linux/arm64 or linux/arm/v7",
        )
    if len(parts) == 2:
        arch, variant = normalize_arch(parts[1], "")
        return Platform(normalize_os(parts[0]), arch, variant)
    if len(parts) == 3:
        arch, variant = normalize_arch(parts[1], parts[2])
        return Platform(normalize_os(parts[0]), arch, variant)
    raise PlatformError(
        f"invalid platform {specifier!r}: too many parts",
        hint="write platforms as os/arch[/variant], for example linux/arm64 or linux/arm/v7",
    )


def parse_list(specifiers: str | list[str] | tuple[str, ...]) -> tuple[Platform, ...]:
    """Parse a comma-separated list (or several), normalised and de-duplicated in order."""
    items = [specifiers] if isinstance(specifiers, str) else list(specifiers)
    result: list[Platform] = []
    for item in items:
        for spec in item.split(","):
            if not spec.strip():
                continue
            platform = parse(spec)
            if platform not in result:
                result.append(platform)
    return tuple(result)
