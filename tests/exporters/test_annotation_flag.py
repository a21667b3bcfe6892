"""`build --annotation`: buildx's TYPE:KEY=VALUE syntax, applied to every image-like output."""

from __future__ import annotations

import pytest

from polybuild.errors import UsageError
from polybuild.exporters import parse_outputs
from polybuild.exporters.spec import AnnotationTarget, parse_annotation_flag


@pytest.mark.parametrize(
    ("text", "target", "key", "value"),
    [
        ("org.a=1", AnnotationTarget.MANIFEST, "org.a", "1"),
        ("index:org.b=2", AnnotationTarget.INDEX, "org.b", "2"),
        ("manifest-descriptor:org.c=x=y", AnnotationTarget.MANIFEST_DESCRIPTOR, "org.c", "x=y"),
    ],
)
def test_parse(text: str, target: AnnotationTarget, key: str, value: str) -> None:
    (annotation,) = parse_annotation_flag(text)
    assert (annotation.target, annotation.key, annotation.value) == (target, key, value)


def test_several_types_give_one_annotation_each() -> None:
    got = parse_annotation_flag("index,manifest:org.opencontainers.image.authors=me")
    assert [(a.target, a.key, a.value) for a in got] == [
        (AnnotationTarget.INDEX, "org.opencontainers.image.authors", "me"),
        (AnnotationTarget.MANIFEST, "org.opencontainers.image.authors", "me"),
    ]


@pytest.mark.parametrize("text", ["novalue", "=x", "bogus:org.a=1"])
def test_invalid(text: str) -> None:
    with pytest.raises(UsageError, match="--annotation"):
        parse_annotation_flag(text)


def test_added_to_image_outputs_only() -> None:
    outputs = parse_outputs(
        ["type=oci,dest=o.tar", "type=local,dest=d"], load=True, annotations=["index:org.a=1"]
    )
    by_type = {o.type.value: o.image.annotations for o in outputs}
    assert [a.key for a in by_type["oci"]] == ["org.a"]
    assert [a.key for a in by_type["image"]] == ["org.a"]
    assert by_type["local"] == ()
