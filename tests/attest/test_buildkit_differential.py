"""A real BuildKit v0.32.2 builds a two-platform image FROM a registry's busybox with
`attest:provenance=mode=max` into an OCI tarball; for the same image manifests polybuild's
attestation manifests, index entries, statements and predicates have BuildKit's structure
(media types, annotations, platform, artifact type, subject, predicate type and keys, the
request, the resolved base images) and, where the facts are the same, its bytes."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from polybuild.attest import inspect, intoto, manifests, provenance
from polybuild.attest.options import provenance_options
from polybuild.image.digest import Digest
from polybuild.image.manifest import parse_index, parse_manifest
from polybuild.platforms import Platform
from tests.buildkit.conftest import BuildkitDaemon, buildkitd_factory  # noqa: F401 (fixture)
from tests.conftest import SHARED, import_busybox, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.root, pytest.mark.integration]

BUILDCTL = SHARED / "tools" / "buildkit" / "buildctl"
PLATFORMS = (Platform("linux", "amd64"), Platform("linux", "arm64"))
NAME = "example.com/attest/app:1"


@pytest.fixture(scope="module")
def node(
    buildkitd_factory: Callable[..., BuildkitDaemon],  # noqa: F811
    registry: Registry,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[BuildkitDaemon, str, Path]]:
    """A daemon that pulls busybox (amd64, arm64) from the test registry."""
    require_root()
    root = tmp_path_factory.mktemp("attest-bk") / "root"
    base = f"{registry.host}/library/busybox:attest"
    import_busybox(root, ("amd64", "arm64"), name=base)
    pushed = run_cli(root, "push", base)
    assert pushed.returncode == 0, pushed.stderr
    daemon = buildkitd_factory(f'[registry."{registry.host}"]\n  http = true\n')
    yield daemon, base, root


def blob(layout: dict[str, bytes], digest: str) -> bytes:
    return layout["blobs/sha256/" + digest.removeprefix("sha256:")]


def read_layout(tarball: Path) -> dict[str, bytes]:
    with tarfile.open(tarball) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def keys(value: Any, opaque: frozenset[str]) -> Any:
    """The key structure (names, order, nesting) below objects, not into `opaque` keys."""
    if isinstance(value, dict):
        return [(k, None if k in opaque else keys(v, opaque)) for k, v in value.items()]
    return None


def test_attestation_manifests_match_buildkits(
    node: tuple[BuildkitDaemon, str, Path], tmp_path: Path
) -> None:
    daemon, base, root = node
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    dockerfile = f"FROM {base}\nARG FOO\nCOPY hello.txt /hello.txt\n".encode()
    (ctx / "Dockerfile").write_bytes(dockerfile)
    (ctx / "hello.txt").write_text("hello\n")
    out = tmp_path / "out.tar"
    subprocess.run(
        [BUILDCTL, "--addr", daemon.address, "build", "--frontend", "dockerfile.v0",
         "--local", f"context={ctx}", "--local", f"dockerfile={ctx}",
         "--opt", "filename=Dockerfile", "--opt", "build-arg:FOO=visible-in-max",
         "--opt", "platform=" + ",".join(f"{p.os}/{p.architecture}" for p in PLATFORMS),
         "--opt", "attest:provenance=mode=max",
         "--output", f"type=oci,dest={out},name={NAME}"],
        check=True, capture_output=True,
    )  # fmt: skip
    layout = read_layout(out)
    top = json.loads(layout["index.json"])["manifests"][0]
    index = parse_index(blob(layout, top["digest"])).value
    images = manifests.image_entries(index)
    assert [d.platform for d in images] == list(PLATFORMS)
    assert len(index.manifests) == 4

    inspected = run_cli(root, "imagetools", "inspect", "--raw", base)
    assert inspected.returncode == 0, inspected.stderr
    # BuildKit records the digest the reference resolved to: the index's, on every platform
    base_digest = Digest.of(inspected.stdout.encode())

    made = []
    for image in images:
        assert image.platform is not None
        (entry,) = manifests.attestations_of(index, image.digest)
        raw = blob(layout, str(entry.digest))
        theirs_manifest = json.loads(raw)
        (layer,) = theirs_manifest["layers"]
        theirs = json.loads(blob(layout, layer["digest"]))
        predicate = theirs["predicate"]
        meta = predicate["runDetails"]["metadata"]

        layers = parse_manifest(blob(layout, str(image.digest))).value.layers
        record = provenance.BuildRecord(
            builder_platform=Platform("linux", "amd64"),
            started=datetime.now(UTC),
            finished=datetime.now(UTC),
            invocation_id="polybuild",
            frontend_attrs={
                "filename": "Dockerfile",
                "build-arg:FOO": "visible-in-max",
                "platform": "linux/amd64,linux/arm64",
                "attest:provenance": "mode=max",
            },
            images=(provenance.ImageMaterial(base, base_digest, image.platform),),
            dockerfile_version=predicate["buildDefinition"]["internalParameters"][
                "dockerfileVersion"
            ],
            steps=(
                provenance.Step(Digest.of(b"from"), {"source": base}, (), ((1, 1),)),
                provenance.Step(
                    Digest.of(b"copy"), {"copy": "hello.txt"}, ((0, 0),), ((3, 3),), layers
                ),
            ),
            dockerfile=("Dockerfile", dockerfile),
        )
        mine = provenance.predicate(record, provenance_options({"mode": "max"}))
        opaque = frozenset({"buildConfig", "layers", "locations", "infos", "sysUsage"})
        assert keys(mine, opaque) == keys(predicate, opaque)
        ours_def, their_def = mine["buildDefinition"], predicate["buildDefinition"]
        assert ours_def["externalParameters"] == their_def["externalParameters"]
        assert ours_def["resolvedDependencies"] == their_def["resolvedDependencies"]
        assert ours_def["buildType"] == their_def["buildType"]
        assert (
            mine["runDetails"]["metadata"]["buildkit_completeness"] == meta["buildkit_completeness"]
        )
        assert list(meta["buildkit_metadata"]["source"]["infos"][0])[:3] == [
            "filename", "language", "data",
        ]  # fmt: skip
        # each step's layer chain: the image's layers, as BuildKit lists them for its last step
        ours_layers = mine["runDetails"]["metadata"]["buildkit_metadata"]["layers"]
        their_layers = meta["buildkit_metadata"]["layers"]
        assert max(their_layers.items())[1] == ours_layers["step1:0"]

        subjects = intoto.image_subjects([NAME], image.platform, image.digest)
        statement = intoto.statement(
            theirs["predicateType"],
            provenance.predicate_json(record, provenance_options({})),
            subjects,
        )
        ours = json.loads(statement.to_json())
        assert [k for k in ours] == [k for k in theirs]
        assert ours["subject"] == theirs["subject"]
        assert ours["_type"] == theirs["_type"]
        assert ours["predicateType"] == theirs["predicateType"] == "https://slsa.dev/provenance/v1"

        # the same statement bytes give BuildKit's manifest bytes and index entry
        same = intoto.Statement(theirs["predicateType"], subjects, json.dumps(predicate).encode())
        assert same.to_json() == blob(layout, layer["digest"])
        attestation = manifests.attestation_manifest(image, [same])
        assert attestation.manifest.raw == raw
        assert attestation.entry == entry
        made.append(attestation)
    assert manifests.with_attestations(images, made) == index.manifests

    # read back as buildx's loader reads them
    found = inspect.read_attestations(index, lambda d: blob(layout, str(d.digest)))
    assert sorted(found) == ["linux/amd64", "linux/arm64"]
    for platform, attested in found.items():
        (entry,) = manifests.attestations_of(index, attested.manifest.digest)
        (layer,) = json.loads(blob(layout, str(entry.digest)))["layers"]
        assert attested.provenance == json.loads(blob(layout, layer["digest"]))["predicate"]
        assert attested.spdx == (), platform
