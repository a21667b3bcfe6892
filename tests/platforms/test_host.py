"""Host platform detection from uname and /proc/cpuinfo."""

from __future__ import annotations

import platform as stdlib_platform

import pytest

from polybuild.platforms import Platform, default_platform, host_platform, normalize
from polybuild.platforms.host import amd64_variant, platform_from_uname

V1 = "flags : fpu sse sse2 lm"
V2 = V1 + " cx16 lahf_lm popcnt pni sse4_1 sse4_2 ssse3"
V3 = V2 + " avx avx2 bmi1 bmi2 f16c fma abm movbe xsave"
V4 = V3 + " avx512f avx512bw avx512cd avx512dq avx512vl"


@pytest.mark.parametrize(
    ("cpuinfo", "level"),
    [(V1, ""), (V2, "v2"), (V3, "v3"), (V4, "v4"), (V4.replace(" avx2", ""), "v2")],
)
def test_amd64_levels(cpuinfo: str, level: str) -> None:
    assert amd64_variant(cpuinfo) == level
    assert platform_from_uname("x86_64", cpuinfo) == Platform("linux", "amd64", level)


@pytest.mark.parametrize(
    ("machine", "cpuinfo", "expected"),
    [
        ("armv7l", "processor : 0\nCPU architecture: 7\n", Platform("linux", "arm", "v7")),
        (
            "armv6l",
            "model name : ARMv6-compatible processor rev 7 (v6l)\nCPU architecture: 7\n",
            Platform("linux", "arm", "v6"),
        ),
        (
            "armv6l",
            "model name : ARMv6-compatible processor rev 7 (v6l)\n",
            Platform("linux", "arm", "v6"),
        ),
        ("aarch64", "CPU architecture: 8\n", Platform("linux", "arm64")),
        ("s390x", "", Platform("linux", "s390x")),
        ("ppc64le", "", Platform("linux", "ppc64le")),
    ],
)
def test_arm_and_others(machine: str, cpuinfo: str, expected: Platform) -> None:
    arch = "arm" if machine.startswith("armv") else machine
    assert platform_from_uname(arch, cpuinfo) == expected


def test_host_platform_agrees_with_uname() -> None:
    host = host_platform()
    assert host.os == "linux"
    assert host.architecture == normalize(Platform("linux", stdlib_platform.machine())).architecture
    assert default_platform().variant == ("" if host.architecture == "amd64" else host.variant)
