"""polybuild's statements and attestation manifests against BuildKit v0.32.2's own bytes
(tests/attest/data: `buildctl build` of tests/attest/data/Dockerfile to an OCI tarball):
the same facts give the same bytes, digests included."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from polybuild.attest import intoto, manifests, provenance
from polybuild.attest.options import provenance_options
from polybuild.errors import ImageError
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import parse_index
from polybuild.platforms import Platform

DATA = Path(__file__).parent / "data"


def golden(name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads((DATA / f"{name}.json").read_text())
    return found


def go_time(text: str) -> tuple[datetime, int]:
    """RFC 3339 with nanoseconds -> (the second, the nanoseconds)."""
    seconds, _, fraction = text.rstrip("Z").partition(".")
    moment = datetime.strptime(seconds, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment, int((fraction or "0").ljust(9, "0"))


def test_min_v02_statement_and_manifest_are_buildkits_bytes() -> None:
    """`--opt filename=Dockerfile --opt build-arg:FOO=secretvalue --opt label:a=b
    attest:provenance=mode=min,version=v0.2`, one platform, `oci-artifact=false`."""
    data = golden("min-v02-single")
    index = parse_index(data["index"].encode()).value
    image, entry = index.manifests
    theirs = json.loads(data["statement"])
    meta = theirs["predicate"]["metadata"]
    started, started_ns = go_time(meta["buildStartedOn"])
    finished, finished_ns = go_time(meta["buildFinishedOn"])
    record = provenance.BuildRecord(
        builder_platform=Platform("linux", "amd64"),
        started=started,
        started_ns=started_ns,
        finished=finished,
        finished_ns=finished_ns,
        invocation_id=meta["buildInvocationID"],
        frontend_attrs={
            "build-arg:FOO": "secretvalue",
            "label:a": "b",
            "filename": "Dockerfile",
            "platform": "linux/amd64",
            "attest:provenance": "mode=min,version=v0.2",
        },
        dockerfile_version="1.26.0",
    )
    options = provenance_options({"mode": "min", "version": "v0.2"})
    predicate = provenance.predicate_json(record, options)
    assert b"secretvalue" not in predicate  # mode=min drops build-arg values
    subjects = intoto.image_subjects(
        ["example.com/foo:1"], Platform("linux", "amd64"), image.digest
    )
    statement = intoto.statement(options.predicate_type, predicate, subjects)
    assert statement.to_json().decode() == data["statement"]

    made = manifests.attestation_manifest(image, [statement], oci_artifact=False)
    assert made.manifest.raw.decode() == data["attestation_manifest"]
    assert made.blobs[made.manifest.value.config.digest].decode() == data["config"]
    assert made.entry == entry
    assert manifests.with_attestations([image], [made]) == index.manifests


def test_max_v1_artifact_manifest_and_subject_are_buildkits() -> None:
    """Two platforms, `attest:provenance=mode=max`, `name=example.com/foo:1`: the statement's
    header and the OCI-artifact manifest are BuildKit's bytes for BuildKit's predicate."""
    data = golden("max-v1-two-platforms")
    index = parse_index(data["index"].encode()).value
    amd64 = index.manifests[0]
    theirs = json.loads(data["statement"])
    subjects = intoto.image_subjects(
        ["example.com/foo:1"], Platform("linux", "amd64"), amd64.digest
    )
    assert [s.to_wire() for s in subjects] == theirs["subject"]
    statement = intoto.statement(
        theirs["predicateType"], json.dumps(theirs["predicate"], indent=3).encode(), subjects
    )
    assert statement.to_json().decode() == data["statement"]
    made = manifests.attestation_manifest(amd64, [statement])
    assert made.manifest.raw.decode() == data["attestation_manifest"]
    assert made.blobs[made.manifest.value.config.digest] == b"{}"
    # BuildKit's order: the images, then their attestation manifests
    assert manifests.with_attestations(index.manifests[:2], [made])[2] == index.manifests[2]
    assert manifests.image_entries(index) == index.manifests[:2]
    assert manifests.attestations_of(index, amd64.digest) == (index.manifests[2],)
    assert manifests.attestations_of(index, index.manifests[1].digest) == (index.manifests[3],)


def test_max_v1_predicate_has_buildkits_shape() -> None:
    """Keys and their order at every level BuildKit defines (not polybuild's op encoding),
    build-arg values kept (mode=max keeps them), locals named, completeness."""
    data = golden("max-v1-two-platforms")
    theirs = json.loads(data["statement"])["predicate"]
    record = provenance.BuildRecord(
        builder_platform=Platform("linux", "amd64"),
        started=datetime(2026, 1, 1, tzinfo=UTC),
        finished=datetime(2026, 1, 1, tzinfo=UTC),
        invocation_id="x",
        frontend_attrs={"build-arg:FOO": "secretvalue"},
        dockerfile_version="1.26.0",
        steps=(
            provenance.Step(
                digest=Descriptor.from_json(
                    json.dumps(json.loads(data["index"])["manifests"][0]).encode()
                ).digest,
                op={"copy": {"src": "/hello.txt", "dest": "/hello.txt"}},
                lines=((3, 3),),
            ),
        ),
        dockerfile=("Dockerfile", b"FROM scratch\n"),
    )
    mine = provenance.predicate(record, provenance_options({"mode": "max"}))

    def keys(value: Any, skip: frozenset[str]) -> Any:
        if isinstance(value, dict):
            return [(k, keys(v, skip)) for k, v in value.items() if k not in skip]
        return None

    opaque = frozenset({"buildConfig", "layers", "locations", "infos"})
    assert keys(mine, opaque) == keys(theirs, opaque)
    assert (
        mine["buildDefinition"]["externalParameters"]
        == theirs["buildDefinition"]["externalParameters"]
    )
    assert list(mine["buildDefinition"]["internalParameters"]["buildConfig"]) == list(
        theirs["buildDefinition"]["internalParameters"]["buildConfig"]
    )
    source = mine["runDetails"]["metadata"]["buildkit_metadata"]["source"]
    assert (
        source["locations"]["step0"]
        == theirs["runDetails"]["metadata"]["buildkit_metadata"]["source"]["locations"]["step1"]
    )
    assert list(source["infos"][0]) == ["filename", "language", "data"]


def test_docker_media_types_are_refused_as_buildkit_refuses_them() -> None:
    data = golden("min-v02-single")
    image = parse_index(data["index"].encode()).value.manifests[0]
    with pytest.raises(ImageError, match="oci-mediatypes=false"):
        manifests.attestation_manifest(image, [], oci_types=False)
