"""Parsing, normalising and formatting platform specifiers (containerd's rules)."""

from __future__ import annotations

import pytest

from polybuild.errors import PlatformError
from polybuild.platforms import Platform, format, host_platform, normalize, parse, parse_list


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("linux/amd64", "linux/amd64"),
        ("linux/x86_64", "linux/amd64"),
        ("linux/x86-64", "linux/amd64"),
        ("linux/amd64/v1", "linux/amd64"),
        ("linux/amd64/v3", "linux/amd64/v3"),
        ("linux/aarch64", "linux/arm64"),
        ("linux/arm64/v8", "linux/arm64"),
        ("linux/arm64/8", "linux/arm64"),
        ("linux/arm64/v9", "linux/arm64/v9"),
        ("linux/armhf", "linux/arm/v7"),
        ("linux/armel", "linux/arm/v6"),
        ("linux/arm", "linux/arm/v7"),
        ("linux/arm/7", "linux/arm/v7"),
        ("linux/arm/v6", "linux/arm/v6"),
        ("linux/arm/5", "linux/arm/v5"),
        ("linux/i386", "linux/386"),
        ("linux/ppc64le", "linux/ppc64le"),
        ("LINUX/AMD64", "linux/amd64"),
        ("macos/arm64", "darwin/arm64"),
        ("windows/amd64", "windows/amd64"),
        ("linux/s390x", "linux/s390x"),
    ],
)
def test_parse_normalises(spec: str, expected: str) -> None:
    assert format(parse(spec)) == expected
    assert normalize(parse(spec)) == parse(spec)


def test_one_part_arch_takes_host_os() -> None:
    assert format(normalize(parse("aarch64"))) == "linux/arm64"
    assert parse("armhf") == Platform("linux", "arm", "v7")


def test_one_part_os_takes_host_arch() -> None:
    host = host_platform()
    assert parse("linux") == Platform("linux", host.architecture, host.variant)


@pytest.mark.parametrize(
    "spec", ["", "linux/*", "linux/arm/v7/extra", "notanos", "linux/am d64", "linux//v7", "/"]
)
def test_invalid_specifiers_raise_platform_error(spec: str) -> None:
    with pytest.raises(PlatformError) as info:
        parse(spec)
    assert "invalid platform" in str(info.value)
    assert info.value.hint


def test_normalize_of_raw_values() -> None:
    assert normalize(Platform("Linux", "aarch64", "v8")) == Platform("linux", "arm64")
    assert normalize(Platform("linux", "arm", "")) == Platform("linux", "arm", "v7")
    assert normalize(Platform("linux", "x86_64")) == Platform("linux", "amd64")


def test_parse_list_dedupes_and_keeps_order() -> None:
    got = parse_list(["linux/amd64,linux/aarch64", "linux/arm64,linux/arm/v7"])
    assert [format(p) for p in got] == ["linux/amd64", "linux/arm64", "linux/arm/v7"]


def test_str_is_format() -> None:
    assert str(Platform("linux", "arm", "v7")) == "linux/arm/v7"
