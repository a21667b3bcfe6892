"""Matchers: containerd's only / only_strict / ordered and their preference order."""

from __future__ import annotations

import pytest

from polybuild.platforms import (
    any_of,
    compatible_platforms,
    format,
    only,
    only_strict,
    ordered,
    parse,
)


def fmt(platforms: tuple[object, ...]) -> list[str]:
    return [format(p) for p in platforms]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "vector"),
    [
        (
            "linux/arm64",
            ["linux/arm64", "linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"],
        ),
        ("linux/amd64/v3", ["linux/amd64/v3", "linux/amd64/v2", "linux/amd64", "linux/386"]),
        ("linux/amd64", ["linux/amd64", "linux/386"]),
        ("linux/arm/v7", ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
        ("linux/arm/v5", ["linux/arm/v5"]),
        ("linux/s390x", ["linux/s390x"]),
    ],
)
def test_compatible_vectors(spec: str, vector: list[str]) -> None:
    assert fmt(compatible_platforms(parse(spec))) == vector


def test_only_is_lenient_only_strict_is_not() -> None:
    arm64, armv7 = parse("linux/arm64"), parse("linux/arm/v7")
    assert only(arm64).match(armv7) is True
    assert only_strict(arm64).match(armv7) is False
    assert only_strict(arm64).match(parse("linux/aarch64")) is True
    assert only(armv7).match(arm64) is False
    assert only(parse("linux/arm/v6")).match(armv7) is False


def test_only_prefers_exact_then_fallbacks_in_order() -> None:
    matcher = only(parse("linux/arm64"))
    candidates = [parse("linux/arm/v6"), parse("linux/arm/v7"), parse("linux/arm64")]
    assert matcher.best(candidates) == parse("linux/arm64")
    assert matcher.best(candidates[:2]) == parse("linux/arm/v7")
    assert matcher.less(parse("linux/arm/v7"), parse("linux/arm/v6"))
    assert not matcher.less(parse("linux/arm/v6"), parse("linux/arm/v7"))
    assert matcher.best([parse("linux/amd64")]) is None


def test_sorting_with_less_matches_preference() -> None:
    import functools

    matcher = only(parse("linux/amd64/v3"))
    items = [parse(s) for s in ("linux/386", "linux/amd64", "linux/amd64/v3", "linux/amd64/v2")]

    def cmp(a: object, b: object) -> int:
        return -1 if matcher.less(a, b) else (1 if matcher.less(b, a) else 0)  # type: ignore[arg-type]

    assert fmt(tuple(sorted(items, key=functools.cmp_to_key(cmp)))) == [
        "linux/amd64/v3",
        "linux/amd64/v2",
        "linux/amd64",
        "linux/386",
    ]


def test_ordered_and_any_of() -> None:
    matcher = ordered(parse("linux/s390x"), parse("linux/arm64"))
    assert matcher.match(parse("linux/arm64")) and not matcher.match(parse("linux/arm/v7"))
    assert matcher.less(parse("linux/s390x"), parse("linux/arm64"))
    lenient = any_of([parse("linux/s390x"), parse("linux/arm64")])
    assert lenient.match(parse("linux/arm/v7"))
