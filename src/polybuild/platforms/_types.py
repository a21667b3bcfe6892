"""The Platform value, its formatting and its normalisation (containerd's rules)."""

from __future__ import annotations

from dataclasses import dataclass

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


def normalize_os(os_name: str) -> str:
    """An OS name in canonical form (lower case; macos -> darwin)."""
    lowered = os_name.lower()
    return "darwin" if lowered == "macos" else lowered


def normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    """An architecture and variant in canonical form (see `normalize`)."""
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
    arch, variant = normalize_arch(platform.architecture, platform.variant)
    return Platform(normalize_os(platform.os), arch, variant)


def format_platform(platform: Platform) -> str:
    """`os/arch` or `os/arch/variant`."""
    if platform.variant:
        return f"{platform.os}/{platform.architecture}/{platform.variant}"
    return f"{platform.os}/{platform.architecture}"
