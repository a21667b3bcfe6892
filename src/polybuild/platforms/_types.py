"""The Platform value and its parsing, formatting and normalisation (containerd's rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from polybuild.errors import PlatformError

KNOWN_OS = frozenset(
    [
        "aix",
        "android",
        "darwin",
        "dragonfly",
        "freebsd",
        "hurd",
        "illumos",
        "ios",
        "js",
        "linux",
        "nacl",
        "netbsd",
        "openbsd",
        "plan9",
        "solaris",
        "wasip1",
        "windows",
        "zos",
    ]
)
KNOWN_ARCH = frozenset(
    [
        "386",
        "amd64",
        "amd64p32",
        "arm",
        "armbe",
        "arm64",
        "arm64be",
        "ppc64",
        "ppc64le",
        "loong64",
        "mips",
        "mipsle",
        "mips64",
        "mips64le",
        "mips64p32",
        "mips64p32le",
        "ppc",
        "riscv",
        "riscv64",
        "s390",
        "s390x",
        "sparc",
        "sparc64",
        "wasm",
    ]
)
_COMPONENT = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True, slots=True, order=True)
class Platform:
    """An OS/architecture/variant triple, as in an OCI image index's `platform` field."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return format_platform(self)

    @property
    def normalized(self) -> Platform:
        return normalize(self)


def _normalize_os(os_name: str) -> str:
    lowered = os_name.lower()
    return "darwin" if lowered == "macos" else lowered


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch in ("i386", "i486", "i586", "i686", "x86"):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
        return arch, variant
    if arch == "ppc64el":
        return "ppc64le", variant
    return arch, variant


def normalize(platform: Platform) -> Platform:
    """The canonical form: lower case, known aliases resolved, default variants filled or dropped.

    x86_64 -> amd64, aarch64 -> arm64 (v8 dropped), armhf -> arm/v7, armel -> arm/v6,
    i386 -> 386, arm without a variant -> arm/v7, amd64/v1 -> amd64.
    """
    arch, variant = _normalize_arch(platform.architecture, platform.variant)
    return Platform(_normalize_os(platform.os), arch, variant)


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
    from polybuild.platforms.host import host_platform  # avoid an import cycle

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
        if _normalize_os(word) in KNOWN_OS:
            host = host_platform()
            return Platform(_normalize_os(word), host.architecture, host.variant)
        arch, variant = _normalize_arch(word, "")
        if arch in KNOWN_ARCH:
            return Platform(host_platform().os, arch, variant)
        raise PlatformError(
            f"invalid platform {specifier!r}: unknown operating system or architecture",
            hint="write platforms as os/arch[/variant], for example linux/arm64 or linux/arm/v7",
        )
    if len(parts) == 2:
        arch, variant = _normalize_arch(parts[1], "")
        return Platform(_normalize_os(parts[0]), arch, variant)
    if len(parts) == 3:
        arch, variant = _normalize_arch(parts[1], parts[2])
        return Platform(_normalize_os(parts[0]), arch, variant)
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


def format_platform(platform: Platform) -> str:
    """`os/arch` or `os/arch/variant`."""
    if platform.variant:
        return f"{platform.os}/{platform.architecture}/{platform.variant}"
    return f"{platform.os}/{platform.architecture}"
