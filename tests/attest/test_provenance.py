"""Provenance predicates from a BuildRecord: what mode=min and mode=max keep (BuildKit's
scrubMinRequest), materials and config sources (slsaMaterials, RequestProvenance), secrets
named but never valued, v1 and v0.2 field names and order (provenance/types)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from polybuild.attest import provenance as pv
from polybuild.attest.options import provenance_options
from polybuild.image.digest import Digest
from polybuild.platforms import Platform

BASE = Digest.parse("sha256:" + "1" * 64)
HTTP = Digest.parse("sha256:" + "2" * 64)
COMMIT = "c" * 40

RECORD = pv.BuildRecord(
    builder_platform=Platform("linux", "amd64"),
    started=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    finished=datetime(2026, 1, 2, 3, 4, 6, 500000, tzinfo=UTC),
    invocation_id="inv",
    frontend_attrs={
        "build-arg:TOKEN": "hunter2",
        "label:owner": "me",
        "target": "final",
        "filename": "Dockerfile",
        "platform": "linux/amd64",
        "image-resolve-mode": "pull",
        "attest:provenance": "mode=max",
        "vcs:source": "https://user:pw@git.example.com/r.git",
        "vcs:revision": COMMIT,
    },
    images=(pv.ImageMaterial("docker.io/library/alpine:3.20", BASE, Platform("linux", "amd64")),),
    http=(pv.HTTPMaterial("https://example.com/f.tgz", HTTP),),
    secrets=(pv.SecretUse("npmrc"), pv.SecretUse("aws", optional=True)),
    ssh=(pv.SecretUse("default"),),
    dockerfile_version="1.26.0",
)


def test_min_drops_build_args_labels_secrets_and_ssh_and_says_so() -> None:
    found = pv.predicate(RECORD, provenance_options({"mode": "min"}))
    request = found["buildDefinition"]["externalParameters"]["request"]
    assert request["args"] == {"target": "final"}
    assert "secrets" not in request and "ssh" not in request
    assert request["root"]["request"] == {"args": {"target": "final"}}
    meta = found["runDetails"]["metadata"]
    assert meta["buildkit_completeness"] == {"request": False, "resolvedDependencies": False}
    text = pv.predicate_json(RECORD, provenance_options({"mode": "min"}))
    for secret in (b"hunter2", b"npmrc", b"pw@"):
        assert secret not in text


def test_max_keeps_build_args_and_names_secrets_without_values() -> None:
    found = pv.predicate(RECORD, provenance_options({"mode": "max"}))
    request = found["buildDefinition"]["externalParameters"]["request"]
    assert list(request) == ["frontend", "args", "secrets", "ssh", "locals", "root",
                             "compatibilityVersion"]  # fmt: skip
    assert request["args"] == {
        "build-arg:TOKEN": "hunter2",  # BuildKit keeps build-arg values in max
        "label:owner": "me",
        "target": "final",
    }
    assert request["secrets"] == [{"id": "npmrc"}, {"id": "aws", "optional": True}]
    assert request["ssh"] == [{"id": "default"}]
    assert found["runDetails"]["metadata"]["buildkit_completeness"]["request"] is True


def test_host_specific_and_attest_args_never_appear_and_vcs_moves_to_metadata() -> None:
    found = pv.predicate(RECORD, provenance_options({"mode": "max"}))
    args = found["buildDefinition"]["externalParameters"]["request"]["args"]
    assert not {"platform", "image-resolve-mode", "attest:provenance"} & set(args)
    assert not any(k.startswith("vcs:") for k in args)
    assert found["runDetails"]["metadata"]["buildkit_metadata"]["vcs"] == {
        "revision": COMMIT,
        "source": "https://user:xxxxx@git.example.com/r.git",
    }
    assert found["buildDefinition"]["externalParameters"]["configSource"] == {"path": "Dockerfile"}


def test_materials_are_purls_and_urls_with_digests() -> None:
    found = pv.predicate(RECORD, provenance_options({}))
    assert list(found["buildDefinition"]) == [
        "buildType",
        "resolvedDependencies",
        "externalParameters",
        "internalParameters",
    ]  # fmt: skip  (Go puts an embedded struct's fields before the outer ones)
    assert found["buildDefinition"]["resolvedDependencies"] == [
        {
            "uri": "pkg:docker/alpine@3.20?platform=linux%2Famd64",
            "digest": {"sha256": "1" * 64},
        },
        {"uri": "https://example.com/f.tgz", "digest": {"sha256": "2" * 64}},
    ]
    local = replace(
        RECORD, images=(pv.ImageMaterial("docker.io/library/app:1", None, None, local=True),)
    )
    assert pv.materials(local)[0] == {"uri": "pkg:oci/app@1"}


def test_a_git_context_is_the_config_source_with_its_commit() -> None:
    record = replace(
        RECORD,
        frontend_attrs={"context": "https://git.example.com/r.git#main", "filename": "Dockerfile"},
        git=(pv.GitMaterial("https://git.example.com/r.git", COMMIT),),
        locals=(),
        images=(),
        http=(),
    )
    found = pv.predicate(record, provenance_options({}))
    assert found["buildDefinition"]["externalParameters"]["configSource"] == {
        "uri": "https://git.example.com/r.git#main",
        "digest": {"sha1": COMMIT},
        "path": "Dockerfile",
    }
    meta = found["runDetails"]["metadata"]
    # no local sources: complete and, without network access, hermetic
    assert meta["buildkit_completeness"]["resolvedDependencies"] is True
    assert meta["buildkit_hermetic"] is True
    assert (
        "buildkit_hermetic"
        not in pv.predicate(replace(record, network_access=True), provenance_options({}))[
            "runDetails"
        ]["metadata"]
    )


def test_v02_uses_its_own_names_and_order() -> None:
    found = pv.predicate(
        RECORD,
        provenance_options(
            {"mode": "max", "version": "v0.2", "builder-id": "https://ci/1", "reproducible": "1"}
        ),
    )
    assert list(found) == ["builder", "buildType", "materials", "invocation", "buildConfig",
                           "metadata"]  # fmt: skip
    assert found["builder"] == {"id": "https://ci/1"}
    assert found["buildType"] == pv.BUILD_TYPE_V02
    assert found["invocation"]["configSource"] == {"entryPoint": "Dockerfile"}
    assert found["invocation"]["environment"] == {
        "dockerfileVersion": "1.26.0",
        "platform": "linux/amd64",
    }
    meta = found["metadata"]
    assert list(meta) == ["buildInvocationID", "buildStartedOn", "buildFinishedOn",
                          "completeness", "reproducible",
                          "https://mobyproject.org/buildkit@v1#metadata"]  # fmt: skip
    assert meta["buildStartedOn"] == "2026-01-02T03:04:05Z"
    assert meta["buildFinishedOn"] == "2026-01-02T03:04:06.5Z"
    assert meta["completeness"] == {"parameters": True, "environment": True, "materials": False}
    assert meta["reproducible"] is True


def test_max_build_config_maps_steps_lines_and_layers() -> None:
    from polybuild.image.descriptor import Descriptor

    layer = Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", HTTP, 10)
    steps = (
        pv.Step(BASE, {"source": "docker-image://alpine"}, (), ((1, 1),)),
        pv.Step(HTTP, {"exec": ["sh", "-c", "make"]}, ((0, 0),), ((3, 4),), (layer,)),
    )
    record = replace(RECORD, steps=steps, dockerfile=("Dockerfile", b"FROM alpine\n"))
    found = pv.predicate(record, provenance_options({"mode": "max"}))
    config = found["buildDefinition"]["internalParameters"]["buildConfig"]
    assert list(config) == ["digestMapping", "llbDefinition"]  # sorted, as BuildKit's map
    assert config["digestMapping"] == {str(BASE): "step0", str(HTTP): "step1"}
    assert config["llbDefinition"][1] == {
        "id": "step1",
        "inputs": ["step0:0"],
        "op": {"exec": ["sh", "-c", "make"]},
    }
    meta = found["runDetails"]["metadata"]["buildkit_metadata"]
    assert meta["source"]["locations"]["step1"] == {
        "locations": [{"ranges": [{"start": {"line": 3}, "end": {"line": 4}}]}]
    }
    assert meta["source"]["infos"][0]["data"] == "RlJPTSBhbHBpbmUK"
    assert meta["layers"] == {"step1:0": [[{
        "mediaType": layer.media_type, "digest": str(HTTP), "size": 10}]]}  # fmt: skip
    # min has none of it
    minimal = pv.predicate(record, provenance_options({"mode": "min"}))
    assert "buildConfig" not in minimal["buildDefinition"]["internalParameters"]
    assert minimal["runDetails"]["metadata"]["buildkit_metadata"] == {
        "vcs": {"revision": COMMIT, "source": "https://user:xxxxx@git.example.com/r.git"}
    }


def test_a_provenance_statement_carries_the_versions_predicate_type() -> None:
    from polybuild.attest.intoto import image_subjects

    subjects = image_subjects(["a.io/x:1"], Platform("linux", "amd64"), BASE)
    made = pv.provenance_statement(RECORD, provenance_options({"version": "v0.2"}), subjects)
    assert made.predicate_type == "https://slsa.dev/provenance/v0.2"
    assert made.subjects == subjects
    assert b"hunter2" in made.to_json()  # max (BuildKit's default mode) keeps build args
