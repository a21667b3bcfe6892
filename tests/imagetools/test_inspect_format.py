"""`imagetools inspect --format` against a real registry, as a buildx user's scripts use it:
JSON of .Manifest piped to jq, ranges over manifests, if/with/printf, .Image of an index (a
platform map) and of one image (the *v1.Image), .SBOM/.Provenance of images with and without
attestations, and Go's template errors with exit code 1."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess

import pytest
from click.testing import CliRunner, Result

from polybuild.cli import cli, main
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index, Manifest, encode_index, encode_manifest
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image, write_index
from polybuild.platforms import Platform
from polybuild.registry import push
from tests.registry.conftest import Registry, make_client

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")
pytestmark = pytest.mark.usefixtures("docker_config")


def _inspect(ref: str, template: str) -> Result:
    return CliRunner(mix_stderr=False).invoke(
        cli, ["imagetools", "inspect", "--format", template, ref]
    )


def _format(ref: str, template: str) -> str:
    result = _inspect(ref, template)
    assert result.exit_code == 0, result.output
    return result.stdout


def _fails(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run polybuild as the console script does (errors rendered); its exit code and stderr."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main(["imagetools", "inspect", *args])
    code = exited.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err.strip()


def _jq(expression: str, document: str) -> str:
    """jq when it is installed (as a user's script runs it), else the same read in Python."""
    jq = shutil.which("jq")
    if jq is None:
        value = json.loads(document)
        for key in expression.lstrip(".").split("."):
            value = value[key]
        return str(value)
    done = subprocess.run(
        [jq, "-r", expression], input=document.encode(), capture_output=True, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode().rstrip("\n")


@pytest.fixture
def pushed(store: ImageStore, registry: Registry) -> dict[str, object]:
    """An index of two platforms and a single-platform image, pushed to the registry."""
    index = write_index(store.content, [AMD, ARM])
    single = write_image(store.content, ARM).with_platform(None)
    index_ref, single_ref = f"{registry.host}/it/multi:1", f"{registry.host}/it/single:1"

    async def go() -> None:
        from polybuild.image.reference import parse

        await push(store.content, index, [parse(index_ref)], client=make_client())
        await push(store.content, single, [parse(single_ref)], client=make_client())

    asyncio.run(go())
    return {"index": index, "single": single, "index_ref": index_ref, "single_ref": single_ref}


def test_manifest_json_through_jq_and_go_template_control(
    pushed: dict[str, object], store: ImageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    index, single = pushed["index"], pushed["single"]
    assert isinstance(index, Descriptor) and isinstance(single, Descriptor)
    index_ref, single_ref = str(pushed["index_ref"]), str(pushed["single_ref"])

    out = _format(index_ref, "{{json .Manifest}}")
    assert not out.endswith("\n")  # as Go's template.Execute: nothing added
    assert _jq(".digest", out) == str(index.digest)
    assert _jq(".mediaType", out) == mt.OCI_INDEX
    document = json.loads(out)
    assert list(document) == ["schemaVersion", "mediaType", "digest", "size", "manifests"]
    assert document["size"] == index.size
    # one image: .Manifest is the descriptor the registry resolved
    out = _format(single_ref, "{{json .Manifest}}")
    assert json.loads(out) == {
        "mediaType": mt.OCI_MANIFEST,
        "digest": str(single.digest),
        "size": single.size,
    }
    assert _jq(".digest", out) == str(single.digest)

    platforms = _format(
        index_ref,
        '{{range .Manifest.Manifests}}{{.Platform.OS}}/{{.Platform.Architecture}}{{"\\n"}}{{end}}',
    )
    assert platforms == "linux/amd64\nlinux/arm64\n"
    children = json.loads(store.content.get(index.digest))["manifests"]
    listed = _format(
        index_ref,
        "{{- range $i, $m := .Manifest.Manifests -}}\n"
        "{{ $i }} {{ $m.Digest }} {{ with $m.Platform }}{{ .Architecture }}{{ end }}\n"
        "{{- end }}",
    )
    assert listed == "".join(
        f"{n} {m['digest']} {m['platform']['architecture']}" for n, m in enumerate(children)
    )
    kind = (
        '{{if eq .Manifest.MediaType "application/vnd.oci.image.index.v1+json"}}index'
        "{{else}}image{{end}} {{with .Manifest.Manifests}}{{len .}}{{else}}none{{end}}"
    )
    assert _format(index_ref, kind) == "index 2"
    # one image's .Manifest is a v1.Descriptor: no Manifests field, as in Go
    code, err = _fails(capsys, "--format", kind, single_ref)
    assert code == 1
    assert "can't evaluate field Manifests in type v1.Descriptor" in err
    single_kind = (
        '{{if eq .Manifest.MediaType "application/vnd.oci.image.manifest.v1+json"}}image{{end}}'
    )
    assert _format(single_ref, single_kind) == "image"
    assert _format(single_ref, '{{printf "%s %d %q" .Manifest.Digest .Manifest.Size .Name}}') == (
        f'{single.digest} {single.size} "{single_ref}"'
    )
    # exactly {{.Manifest}} (any spacing) is buildx's human view
    human = _format(index_ref, "  {{ .Manifest }}\n")
    assert human.startswith(f"Name:      {index_ref}\nMediaType: {mt.OCI_INDEX}\n")


def test_image_of_an_index_and_of_one_image(pushed: dict[str, object], store: ImageStore) -> None:
    index_ref, single_ref = str(pushed["index_ref"]), str(pushed["single_ref"])
    images = json.loads(_format(index_ref, "{{json .Image}}"))
    assert list(images) == ["linux/amd64", "linux/arm64"]
    assert images["linux/arm64"]["architecture"] == "arm64"
    assert _format(index_ref, "{{range $p, $i := .Image}}{{$p}}={{$i.OS}} {{end}}") == (
        "linux/amd64=linux linux/arm64=linux "
    )
    assert _format(index_ref, '{{(index .Image "linux/amd64").Architecture}}') == "amd64"

    single = pushed["single"]
    assert isinstance(single, Descriptor)
    manifest = json.loads(store.content.get(single.digest))
    config = json.loads(store.content.get(Digest.parse(manifest["config"]["digest"])))
    image = json.loads(_format(single_ref, "{{json .Image}}"))
    # v1.Image's fields in Go's order; what the OCI struct has not is dropped
    order = ["created", "author", "architecture", "os", "variant", "config", "rootfs", "history"]
    assert list(image) == [k for k in order if k in image]
    assert image["architecture"] == "arm64" and image["os"] == "linux"
    assert image["rootfs"] == config["rootfs"]
    assert image["config"].get("Cmd") == config.get("config", {}).get("Cmd")
    assert _format(single_ref, "{{.Image.Architecture}} {{.Image.RootFS.Type}}") == ("arm64 layers")
    # no attestations: buildx's empty stub (one image) and empty map (several)
    assert _format(single_ref, "{{json .SBOM}} {{json .Provenance}} {{.Provenance.SLSA}}") == (
        "{} {} <nil>"
    )
    assert _format(index_ref, "{{json .SBOM}} {{json .Provenance}} {{len .SBOM}}") == "{} {} 0"
    whole = json.loads(_format(index_ref, "{{json .}}"))
    assert list(whole) == ["name", "manifest", "image"] and whole["name"] == index_ref


def _blob(
    store: ImageStore, media_type: str, data: bytes, annotations: dict[str, str]
) -> Descriptor:
    digest = store.content.put(data)
    return Descriptor(media_type, digest, len(data), annotations=annotations)


def test_sbom_and_provenance_of_attested_images(store: ImageStore, registry: Registry) -> None:
    images = [write_image(store.content, p) for p in (AMD, ARM)]
    entries: list[Descriptor] = list(images)
    for n, image in enumerate(images):
        spdx = {"predicateType": "https://spdx.dev/Document", "predicate": {"name": f"sbom{n}"}}
        slsa = {"predicate": {"buildType": "https://mobyproject.org/buildkit@v1", "n": n}}
        layers = (
            _blob(
                store,
                mt.IN_TOTO,
                json.dumps(spdx).encode(),
                {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
            ),
            _blob(
                store,
                "application/vnd.in-toto.provenance+dsse",
                json.dumps(
                    {"payload": base64.b64encode(json.dumps(slsa).encode()).decode()}
                ).encode(),
                {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
            ),
        )
        config = _blob(store, "application/vnd.oci.image.config.v1+json", b"{}", {})
        attestation = encode_manifest(Manifest(config=config, layers=layers))
        store.content.put(attestation.raw, attestation.digest)
        entries.append(
            attestation.descriptor(
                Platform("unknown", "unknown"),
                {
                    mt.ANNOTATION_DOCKER_REFERENCE_TYPE: mt.ATTESTATION_MANIFEST,
                    mt.ANNOTATION_DOCKER_REFERENCE_DIGEST: str(image.digest),
                },
            )
        )
    index = encode_index(Index(manifests=tuple(entries)))
    store.content.put(index.raw, index.digest)
    ref = f"{registry.host}/it/attested:1"

    async def go() -> None:
        from polybuild.image.reference import parse

        await push(store.content, index.descriptor(), [parse(ref)], client=make_client())

    asyncio.run(go())
    assert _format(ref, "{{json .Image | len}} {{len .Image}}") != ""
    assert _format(ref, "{{len .Image}}") == "2"  # attestation manifests are not platforms
    sbom = json.loads(_format(ref, "{{json .SBOM}}"))
    assert sbom == {
        "linux/amd64": {"SPDX": {"name": "sbom0"}},
        "linux/arm64": {"SPDX": {"name": "sbom1"}},
    }
    provenance = _format(
        ref, "{{range $p, $v := .Provenance}}{{$p}} {{$v.SLSA.buildType}} {{$v.SLSA.n}};{{end}}"
    )
    # numbers in a predicate are float64, as Go decodes them into `any`
    assert provenance == (
        "linux/amd64 https://mobyproject.org/buildkit@v1 0;"
        "linux/arm64 https://mobyproject.org/buildkit@v1 1;"
    )


def test_template_errors_name_the_position_and_exit_1(
    pushed: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    index_ref, single_ref = str(pushed["index_ref"]), str(pushed["single_ref"])
    assert _fails(capsys, "--format", "{{.Manifest.Nope}}", index_ref) == (
        1,
        'ERROR: template: :1:2: executing "" at <.Manifest.Nope>: can\'t evaluate field Nope in '
        "type struct { SchemaVersion int; MediaType string; Digest digest.Digest; Size int64; "
        "Manifests []v1.Descriptor; Annotations map[string]string }",
    )
    assert _fails(capsys, "--format", "x\n {{.Nope}}", single_ref) == (
        1,
        'ERROR: template: :2:3: executing "" at <.Nope>: can\'t evaluate field Nope in type '
        "imagetools.tplInput",
    )
    assert _fails(capsys, "--format", "{{range .Manifest}}", single_ref) == (
        1,
        "ERROR: template: :1: unexpected EOF",
    )
    assert _fails(capsys, "--format", "{{nosuch .Name}}", single_ref) == (
        1,
        'ERROR: template: :1: function "nosuch" not defined',
    )
    code, err = _fails(capsys, "--raw", "--format", "x", single_ref)
    assert code == 2 and err == "ERROR: format and raw cannot be used together"
