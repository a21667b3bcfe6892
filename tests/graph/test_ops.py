"""Op digests: canonical over definition and inputs, sensitive to every field that matters."""

from __future__ import annotations

import pytest

from polybuild.graph import Copy, Exec, ImageSource, LocalSource, Merge, Mount, canonical_json, walk
from polybuild.platforms import parse

AMD64, ARM64 = parse("linux/amd64"), parse("linux/arm64")
BASE = ImageSource("docker.io/library/alpine:latest", AMD64)


def _exec(**changes: object) -> Exec:
    fields: dict[str, object] = {
        "rootfs": BASE, "argv": ("sh", "-c", "make"), "env": ("PATH=/bin",), "cwd": "/",
        "user": "", "platform": AMD64,
    }  # fmt: skip
    fields.update(changes)
    return Exec(**fields)  # type: ignore[arg-type]


def test_canonical_json_is_sorted_and_compact() -> None:
    assert canonical_json({"b": 1, "a": ["é"]}) == b'{"a":["\\u00e9"],"b":1}'


def test_equal_definitions_give_equal_digests_and_description_is_ignored() -> None:
    assert _exec().digest == _exec(description="anything").digest
    assert _exec().digest.startswith("sha256:") and len(_exec().digest) == 71


@pytest.mark.parametrize(
    "changes",
    [
        {"argv": ("sh", "-c", "make all")},
        {"env": ("PATH=/bin", "A=1")},
        {"cwd": "/src"},
        {"user": "1000"},
        {"platform": ARM64},
        {"rootfs": ImageSource("docker.io/library/alpine:latest", ARM64)},
        {"rootfs": None},
        {"network": "none"},
        {"security": "insecure"},
        {"mounts": (Mount("cache", "/c", cache_id="/c"),)},
        {"mounts": (Mount("bind", "/s", source=LocalSource("context", AMD64)),)},
    ],
)
def test_every_field_and_input_changes_the_digest(changes: dict[str, object]) -> None:
    assert _exec(**changes).digest != _exec().digest


def test_walk_orders_inputs_first_and_dedupes() -> None:
    run = _exec()
    copy = Copy(None, run, ("/out",), "/out", AMD64)
    merged = Merge((run, copy), AMD64)
    assert walk((merged, run)) == (BASE, run, copy, merged)
