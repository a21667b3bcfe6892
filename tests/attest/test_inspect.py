"""Attestations read back per platform, and buildx's `.Provenance` / `.SBOM` shapes."""

from __future__ import annotations

import json

from polybuild.attest import inspect, intoto, manifests
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index
from polybuild.platforms import Platform

AMD64 = Descriptor(
    "application/vnd.oci.image.manifest.v1+json", Digest.of(b"amd64"), 5, Platform("linux", "amd64")
)
ARM = Descriptor(
    "application/vnd.oci.image.manifest.v1+json",
    Digest.of(b"arm"),
    3,
    Platform("linux", "arm", "v7"),
)


def _index(sboms: int) -> tuple[Index, dict[Digest, bytes]]:
    blobs: dict[Digest, bytes] = {}
    made = []
    for image in (AMD64, ARM):
        assert image.platform is not None
        subjects = intoto.image_subjects(["x.io/a:1"], image.platform, image.digest)
        statements = [
            intoto.statement(
                "https://slsa.dev/provenance/v1",
                b'{"arch": "%s"}' % image.platform.architecture.encode(),
                subjects,
            )
        ]
        if image is AMD64:
            statements += [
                intoto.statement(intoto.PREDICATE_SPDX, b'{"n": %d}' % n, subjects)
                for n in range(sboms)
            ]
        att = manifests.attestation_manifest(image, statements)
        blobs.update(att.blobs)
        blobs[att.manifest.digest] = att.manifest.raw
        made.append(att)
    return Index(manifests.with_attestations([AMD64, ARM], made)), blobs


def test_each_platform_gets_its_own_predicates() -> None:
    index, blobs = _index(sboms=2)
    found = inspect.read_attestations(index, lambda d: blobs[d.digest])
    assert sorted(found) == ["linux/amd64", "linux/arm/v7"]
    assert found["linux/amd64"].provenance == {"arch": "amd64"}
    assert found["linux/arm/v7"].provenance == {"arch": "arm"}
    assert found["linux/amd64"].spdx == ({"n": 0}, {"n": 1})
    assert found["linux/arm/v7"].spdx == ()
    assert inspect.provenance_value(found) == {
        "linux/amd64": {"SLSA": {"arch": "amd64"}},
        "linux/arm/v7": {"SLSA": {"arch": "arm"}},
    }
    assert inspect.sbom_value(found) == {
        "linux/amd64": {"SPDX": {"n": 0}, "AdditionalSPDXs": [{"n": 1}]}
    }


def test_one_platform_is_the_stub_itself() -> None:
    index, blobs = _index(sboms=1)
    one = Index(tuple(d for d in index.manifests if d.digest != ARM.digest)[:2])
    found = inspect.read_attestations(one, lambda d: blobs[d.digest])
    assert inspect.provenance_value(found) == {"SLSA": {"arch": "amd64"}}
    assert inspect.sbom_value(found) == {"SPDX": {"n": 0}}
    assert json.loads(inspect.template_json(inspect.sbom_value(found))) == {"SPDX": {"n": 0}}


def test_template_json_sorts_keys_and_escapes_as_go() -> None:
    assert inspect.template_json({"b": "<", "a": 1}) == '{\n  "a": 1,\n  "b": "\\u003c"\n}'
