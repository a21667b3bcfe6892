"""The platform this machine runs natively: OS, architecture and CPU variant."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

from polybuild.platforms._types import Platform, normalize

# x86-64 psABI micro-architecture levels, by the /proc/cpuinfo flag names that show them
# (sse3 is reported as "pni", lzcnt as "abm").
AMD64_LEVEL_FLAGS: tuple[tuple[str, frozenset[str]], ...] = (
    ("v2", frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"})),
    (
        "v3",
        frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}),
    ),
    ("v4", frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
)


def _cpuinfo_field(cpuinfo: str, name: str) -> str | None:
    for line in cpuinfo.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == name.lower():
            return value.strip()
    return None


def amd64_variant(cpuinfo: str) -> str:
    """The highest x86-64 level (v2..v4) whose flags the CPU has; "" for the baseline v1."""
    flags = set((_cpuinfo_field(cpuinfo, "flags") or "").split())
    variant = ""
    for level, required in AMD64_LEVEL_FLAGS:
        if not required <= flags:
            break
        variant = level
    return variant


def arm_variant(cpuinfo: str, architecture: str) -> str:
    """The ARM variant from the "CPU architecture" field ("7" -> v7; arm64 keeps no variant)."""
    value = (_cpuinfo_field(cpuinfo, "CPU architecture") or "").lower()
    if architecture == "arm64":
        # arm64 v8 is the default and is dropped; later versions are kept as containerd does.
        return "" if value in ("", "8", "aarch64") else ("v" + value if value.isdigit() else "")
    if value in ("aarch64",):
        return "v8"
    model = (_cpuinfo_field(cpuinfo, "model name") or "").lower()
    if "armv6-compatible" in model:
        # The Raspberry Pi 1's ARM1176 reports "CPU architecture: 7" but is an ARMv6 core.
        return "v6"
    digits = "".join(ch for ch in value if ch.isdigit())
    if digits in ("5", "6", "7", "8"):
        return "v" + digits
    for version in ("7", "6", "5"):
        if f"armv{version}" in model:
            return "v" + version
    return "v7"


def platform_from_uname(machine: str, cpuinfo: str, os_name: str = "linux") -> Platform:
    """The platform for a `uname -m` machine name and /proc/cpuinfo text."""
    base = normalize(Platform(os_name, machine))
    if base.architecture == "amd64":
        return Platform(base.os, "amd64", amd64_variant(cpuinfo))
    if base.architecture in ("arm", "arm64"):
        return Platform(base.os, base.architecture, arm_variant(cpuinfo, base.architecture))
    return base


@functools.cache
def host_platform() -> Platform:
    """This machine's native platform, with its CPU variant (for example linux/amd64/v3)."""
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        cpuinfo = ""
    os_name = "darwin" if sys.platform == "darwin" else sys.platform.rstrip("0123456789")
    return platform_from_uname(os.uname().machine, cpuinfo, os_name)


def default_platform() -> Platform:
    """The platform images are built for when none is asked: the host without its amd64 level.

    As with Docker, a plain build on an x86-64/v3 machine produces linux/amd64, not
    linux/amd64/v3, so the image runs on every x86-64 machine.
    """
    host = host_platform()
    if host.architecture == "amd64":
        return Platform(host.os, "amd64")
    return host
