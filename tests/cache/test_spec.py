"""`--cache-to` / `--cache-from` values parsed as buildx parses them, and refused with the
flag and the value named when they are wrong."""

from __future__ import annotations

import pytest

from polybuild.cache.spec import CacheSpec, CacheType, Direction, parse_cache, parse_caches
from polybuild.errors import UsageError


def test_a_bare_reference_is_a_registry_cache() -> None:
    spec = parse_cache("r.test/app:cache", Direction.IMPORT)
    assert spec == CacheSpec(CacheType.REGISTRY, (("ref", "r.test/app:cache"),))
    assert str(spec) == "type=registry,ref=r.test/app:cache"


def test_fields_keep_their_order_and_quoted_commas() -> None:
    spec = parse_cache('type=registry,ref=r.test/a:c,mode=max,"x=1,2"', Direction.EXPORT)
    assert spec.type is CacheType.REGISTRY
    assert spec.attrs == (("ref", "r.test/a:c"), ("mode", "max"), ("x", "1,2"))
    assert spec.get("mode") == "max"


def test_inline_needs_nothing_and_empty_values_are_skipped() -> None:
    assert parse_caches(["type=inline", ""], Direction.EXPORT) == (CacheSpec(CacheType.INLINE),)


@pytest.mark.parametrize(
    ("value", "flag", "words"),
    [
        ("type=registry", Direction.EXPORT, "--cache-to 'type=registry': type=registry needs ref="),
        ("type=local", Direction.IMPORT, "needs src="),
        ("type=local,src=d", Direction.EXPORT, "needs dest="),
        ("type=floppy,ref=x", Direction.IMPORT, "unknown cache type 'floppy'"),
        ("ref=x,mode=max", Direction.EXPORT, "type is required"),
        ("type=registry,ref=x,mode=all", Direction.EXPORT, "mode must be min or max"),
        ("type=registry,ref=x,ref=y", Direction.EXPORT, "ref is given twice"),
        ("type=registry,oops", Direction.IMPORT, "'oops' is not key=value"),
    ],
)
def test_wrong_values_name_the_flag(value: str, flag: Direction, words: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_cache(value, flag)
    assert words in raised.value.message
    assert raised.value.message.startswith(str(flag))
