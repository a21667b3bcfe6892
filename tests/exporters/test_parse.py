"""`-o/--output`, `--push`, `--load` and `-t` parsing, buildx's syntax and our errors."""

from __future__ import annotations

import pytest

from polybuild.errors import UsageError
from polybuild.exporters import (
    Annotation,
    AnnotationTarget,
    OutputType,
    parse_output,
    parse_outputs,
)
from polybuild.image.reference import parse
from polybuild.layers import Compression
from polybuild.platforms import Platform


@pytest.mark.parametrize(
    ("spec", "kind", "dest"),
    [
        ("./out", OutputType.LOCAL, "./out"),
        ("dir", OutputType.LOCAL, "dir"),
        ("-", OutputType.TAR, "-"),
        ("type=local,dest=out", OutputType.LOCAL, "out"),
        ("dest=out,type=local", OutputType.LOCAL, "out"),
        ("type=tar,dest=f.tar", OutputType.TAR, "f.tar"),
        ("type=tar", OutputType.TAR, "-"),
        ("type=oci,dest=out.tar", OutputType.OCI, "out.tar"),
        ("type=oci", OutputType.OCI, "-"),
        ("type=oci,dest=-", OutputType.OCI, "-"),
        ("type=docker,dest=x.tar", OutputType.DOCKER, "x.tar"),
        ("type=docker", OutputType.DOCKER, None),
        ("type=image", OutputType.IMAGE, None),
        ("TYPE=image", OutputType.IMAGE, None),
        ("type=cacheonly", OutputType.CACHEONLY, None),
    ],
)
def test_types_and_destinations(spec: str, kind: OutputType, dest: str | None) -> None:
    output = parse_output(spec)
    assert output.type is kind
    assert output.dest == dest


def test_image_options() -> None:
    output = parse_output(
        "type=image,name=a:1,push=true,store=false,oci-mediatypes=false,"
        "compression=zstd,compression-level=5,force-compression=true"
    )
    assert output.names == (parse("a:1"),)
    assert output.push and not output.store
    assert output.image.oci_mediatypes is False
    assert output.image.compression is Compression.ZSTD
    assert output.image.compression_level == 5
    assert output.image.force_compression


@pytest.mark.parametrize(
    "spec",
    ['type=image,"name=a,b:2",push=true', "type=image,name=a,b:2,push=true"],
)
def test_several_names_quoted_or_not(spec: str) -> None:
    output = parse_output(spec)
    assert output.names == (parse("a"), parse("b:2"))
    assert output.push


def test_registry_is_a_pushed_image() -> None:
    output = parse_output("type=registry,name=r.example/a:1")
    assert output.type is OutputType.IMAGE and output.push
    assert output.names == (parse("r.example/a:1"),)
    assert not parse_output("type=registry,name=a,push=false").push


def test_media_type_defaults_follow_buildkit() -> None:
    assert parse_output("type=image").image.oci_mediatypes
    assert parse_output("type=oci").image.oci_mediatypes
    assert not parse_output("type=docker,dest=x.tar").image.oci_mediatypes
    assert parse_output("type=docker,dest=x.tar,oci-mediatypes=true").image.oci_mediatypes


def test_uncompressed_and_annotations() -> None:
    output = parse_output(
        "type=oci,dest=o.tar,compression=uncompressed,annotation.a=1,annotation-index.b=2,"
        "annotation-manifest[linux/arm64].c=3,annotation-manifest-descriptor.d=4,"
        "annotation-index-descriptor.e=5"
    )
    assert output.image.compression is Compression.NONE
    assert output.image.annotations == (
        Annotation(AnnotationTarget.MANIFEST, "a", "1"),
        Annotation(AnnotationTarget.INDEX, "b", "2"),
        Annotation(AnnotationTarget.MANIFEST, "c", "3", Platform("linux", "arm64")),
        Annotation(AnnotationTarget.MANIFEST_DESCRIPTOR, "d", "4"),
        Annotation(AnnotationTarget.INDEX_DESCRIPTOR, "e", "5"),
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("type=foo", '--output: unknown type "foo"'),
        ("type=local", "dest is required for type=local"),
        ("type=local,dest=-", "dest cannot be stdout for type=local"),
        ("type=image,dest=x", "type=image does not take dest"),
        ("type=local,dest=x,name=a", 'unknown key "name" for type=local'),
        ("type=oci,dest=x,push=true", 'unknown key "push" for type=oci'),
        ("type=image,bogus=1", 'unknown key "bogus" for type=image'),
        ("type=image,push=maybe", "push must be true or false"),
        ("type=image,compression=lz4", "compression must be gzip, zstd or uncompressed"),
        ("type=image,compression-level=high", "compression-level must be an integer"),
        ("dest=x,junk", "invalid value 'junk'"),
        ("dest=x,name=a", "type is required"),
        ("type=image,name=UPPER", "--output: name:"),
        ("type=image,name=a@sha256:" + "0" * 64, "may not contain a digest"),
        ("type=local,dest=x,annotation.a=1", "does not take annotations"),
        ("type=image,annotation-bogus.a=1", "invalid annotation key"),
        ("type=image,annotation-index[linux/arm64].a=1", "only manifest annotations"),
        ('type=image,"name=a', "cannot parse"),
    ],
)
def test_errors_name_the_flag_and_key(spec: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_output(spec)
    assert message in str(info.value)
    assert str(info.value).startswith("--output")


def test_push_flag_adds_or_updates_an_image_output() -> None:
    (pushed,) = parse_outputs([], push=True, tags=["a:1"])
    assert pushed.type is OutputType.IMAGE and pushed.push and not pushed.store
    assert pushed.names == (parse("a:1"),)
    (merged,) = parse_outputs(["type=image,name=b"], push=True, tags=["a:1"])
    assert merged.push and merged.names == (parse("b"),)  # name= wins over -t


def test_load_flag_adds_a_store_output_once() -> None:
    (loaded,) = parse_outputs([], load=True, tags=["a"])
    assert loaded.type is OutputType.IMAGE and loaded.store and not loaded.push
    both = parse_outputs([], push=True, load=True, tags=["a"])
    assert len(both) == 1 and both[0].push and both[0].store
    outputs = parse_outputs(["./dir"], load=True)
    assert [o.type for o in outputs] == [OutputType.LOCAL, OutputType.IMAGE]


def test_tags_apply_to_image_outputs_only() -> None:
    outputs = parse_outputs(["type=oci,dest=o.tar", "type=local,dest=d"], tags=["a", "b"])
    assert outputs[0].names == (parse("a"), parse("b"))
    assert outputs[1].names == ()


def test_cacheonly_and_empty_give_no_output() -> None:
    assert parse_outputs(["type=cacheonly"]) == []
    assert parse_outputs([""]) == []


@pytest.mark.parametrize(
    ("specs", "kwargs", "message"),
    [
        (["type=image,push=true"], {}, "a name is needed to push"),
        ([], {"push": True}, "a name is needed to push"),
        (["type=oci", "-"], {}, "more than one output writes to stdout"),
        (["type=image,store=false"], {}, "writes nothing"),
        (["type=docker,dest=x.tar,annotation.a=1"], {}, "annotations need OCI media types"),
    ],
)
def test_whole_command_line_errors(specs: list[str], kwargs: dict[str, bool], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_outputs(specs, **kwargs)
