"""`imagetools create` flags against a real registry, compared with what buildx does: the
index written as Go's MarshalIndent (pushed and printed by --dry-run), --annotation,
--prefer-index=false, -f descriptor files, bare sha256: sources, --progress, --metadata-file,
and buildx's error wording."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest

from polybuild.cli import main
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image
from polybuild.platforms import Platform
from polybuild.registry import push
from tests.registry.conftest import Registry, make_client

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")
pytestmark = pytest.mark.usefixtures("docker_config")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """polybuild as the console script runs it: exit code, stdout, stderr."""
    capsys.readouterr()
    code = 0
    try:
        main(["imagetools", *args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def _raw(capsys: pytest.CaptureFixture[str], ref: str) -> bytes:
    code, out, err = _run(capsys, "inspect", "--raw", ref)
    assert code == 0, err
    return out.encode()


@pytest.fixture
def images(store: ImageStore, registry: Registry) -> dict[str, Descriptor | str]:
    """Two single-platform images pushed as plain manifests to one repository."""
    amd, arm = write_image(store.content, AMD), write_image(store.content, ARM)
    repo = f"{registry.host}/create/app"

    async def go() -> None:
        for tag, image in (("amd", amd), ("arm", arm)):
            await push(
                store.content,
                image.with_platform(None),
                [parse(f"{repo}:{tag}")],
                client=make_client(),
            )

    asyncio.run(go())
    return {"repo": repo, "amd": amd, "arm": arm}


def test_dry_run_prints_the_indented_index_that_is_pushed(
    images: dict[str, Descriptor | str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo, amd, arm = images["repo"], images["amd"], images["arm"]
    assert isinstance(amd, Descriptor) and isinstance(arm, Descriptor)
    code, out, err = _run(capsys, "create", "--dry-run", f"{repo}:amd", f"{repo}:arm")
    assert code == 0, err
    # buildx: fmt.Printf("%s\n", json.MarshalIndent(index, "", "  "))
    assert out == (
        "{\n"
        '  "schemaVersion": 2,\n'
        f'  "mediaType": "{mt.OCI_INDEX}",\n'
        '  "manifests": [\n'
        "    {\n"
        f'      "mediaType": "{mt.OCI_MANIFEST}",\n'
        f'      "digest": "{amd.digest}",\n'
        f'      "size": {amd.size},\n'
        '      "platform": {\n'
        '        "architecture": "amd64",\n'
        '        "os": "linux"\n'
        "      }\n"
        "    },\n"
        "    {\n"
        f'      "mediaType": "{mt.OCI_MANIFEST}",\n'
        f'      "digest": "{arm.digest}",\n'
        f'      "size": {arm.size},\n'
        '      "platform": {\n'
        '        "architecture": "arm64",\n'
        '        "os": "linux"\n'
        "      }\n"
        "    }\n"
        "  ]\n"
        "}\n"
    )
    code, _, err = _run(
        capsys, "create", "--progress=quiet", "-t", f"{repo}:multi", f"{repo}:amd", f"{repo}:arm"
    )
    assert code == 0 and err == ""
    pushed = _raw(capsys, f"{repo}:multi")
    assert pushed == out[:-1].encode()  # the same bytes, so the same digest


def test_annotations_on_the_index_and_its_descriptors(
    images: dict[str, Descriptor | str], capsys: pytest.CaptureFixture[str]
) -> None:
    repo = images["repo"]
    code, out, err = _run(
        capsys, "create", "--dry-run",
        "--annotation", "index:foo=bar", "--annotation", "index:bar=baz",
        "--annotation", "manifest-descriptor:foo=bar",
        "--annotation", "manifest-descriptor[linux/amd64]:bar=baz",
        f"{repo}:amd", f"{repo}:arm",
    )  # fmt: skip
    assert code == 0, err
    index = json.loads(out)
    assert index["annotations"] == {"bar": "baz", "foo": "bar"}
    assert list(index["annotations"]) == ["bar", "foo"]  # Go writes map keys sorted
    assert [m["annotations"] for m in index["manifests"]] == [
        {"bar": "baz", "foo": "bar"},
        {"foo": "bar"},
    ]
    # one annotated source is still made an index
    code, out, _ = _run(capsys, "create", "--dry-run", "--annotation", "index:a=b", f"{repo}:amd")
    assert code == 0 and json.loads(out)["annotations"] == {"a": "b"}
    for flag, message in [
        ("manifest:foo=bar", 'ERROR: "manifest" annotations are not supported yet'),
        ("foo=bar", 'ERROR: "" annotations are not supported yet'),
        ("index-descriptor:foo=bar",
         'ERROR: "index-descriptor" annotations are invalid while creating an image'),
        ("bogus:foo=bar", 'ERROR: failed to parse annotations: unknown annotation type "bogus"'),
        ("foo", 'ERROR: failed to parse annotations: invalid annotation "foo", expected key=value'),
    ]:  # fmt: skip
        code, _, err = _run(
            capsys, "create", "--dry-run", "--annotation", flag, f"{repo}:amd", f"{repo}:arm"
        )
        assert code != 0 and err.strip() == message, (flag, err)


def test_prefer_index_sources_by_digest_and_descriptor_files(
    images: dict[str, Descriptor | str],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    registry: Registry,
) -> None:
    repo, amd, arm = images["repo"], images["amd"], images["arm"]
    assert isinstance(amd, Descriptor) and isinstance(arm, Descriptor)
    # --prefer-index=false: one manifest is copied as it is (same digest)
    code, _, err = _run(
        capsys,
        "create",
        "--prefer-index=false",
        "--progress=none",
        "-t",
        f"{repo}:copy",
        f"{repo}:amd",
    )
    assert code == 0, err
    assert hashlib.sha256(_raw(capsys, f"{repo}:copy")).hexdigest() == amd.digest.hex
    # by default it is wrapped in an index
    code, out, _ = _run(capsys, "create", "--dry-run", f"{repo}:amd")
    assert json.loads(out)["manifests"][0]["digest"] == str(amd.digest)
    # a bare digest resolves in the one repository named (here by the tag)
    code, _, err = _run(
        capsys,
        "create",
        "--progress=plain",
        "-t",
        f"{repo}:bydigest",
        str(amd.digest),
        str(arm.digest),
    )
    assert code == 0, err
    lines = err.splitlines()
    assert lines[0] == f"#1 [internal] pushing {repo}"
    copied = f"copying {amd.digest} from {repo}:bydigest@{amd.digest} to {repo}"
    assert any(line.endswith(copied) for line in lines)
    assert lines[-1].startswith("#1 DONE ")
    index = json.loads(_raw(capsys, f"{repo}:bydigest"))
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    # a descriptor file (-f) is read in that repository too, its platform kept
    descriptor = {
        "mediaType": mt.OCI_MANIFEST,
        "digest": str(arm.digest),
        "size": arm.size,
        "platform": {"architecture": "arm64", "os": "linux"},
    }
    (tmp_path / "arm.json").write_text(json.dumps(descriptor))
    metadata = tmp_path / "metadata.json"
    code, _, err = _run(
        capsys,
        "create",
        "-f",
        str(tmp_path / "arm.json"),
        "-t",
        f"{repo}:fromfile",
        "--metadata-file",
        str(metadata),
        f"{repo}:amd",
    )
    assert code == 0, err
    index_raw = _raw(capsys, f"{repo}:fromfile")
    assert [m["digest"] for m in json.loads(index_raw)["manifests"]] == [
        str(arm.digest),
        str(amd.digest),
    ]
    assert json.loads(metadata.read_text()) == {
        "containerimage.descriptor": {
            "mediaType": mt.OCI_INDEX,
            "digest": "sha256:" + hashlib.sha256(index_raw).hexdigest(),
            "size": len(index_raw),
        },
        "image.name": repo,
    }
    # buildx's errors
    other = f"{registry.host}/create/other"
    for args, message in [
        (("-t", f"{other}:x", f"{repo}:amd", str(arm.digest)),
         f'ERROR: multiple repositories specified, cannot infer repository for "{arm.digest}"'),
        (
            (f"{repo}:amd",),
            "ERROR: can't push with no tags specified, please set --tag or --dry-run",
        ),
        (("--dry-run",), "ERROR: no sources specified"),
        (("--dry-run", '{"schemaVersion": 2}'),
         'ERROR: failed to parse source "{\\"schemaVersion\\": 2}", valid sources are digests, '
         "references and descriptors: expected an OCI content descriptor, got a manifest or "
         "index (schemaVersion 2)"),
    ]:  # fmt: skip
        code, _, err = _run(capsys, "create", *args)
        assert code != 0 and err.strip() == message, (args, err)
