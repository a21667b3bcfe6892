"""Attestations from `polybuild build` end to end, with the real registry: what buildx pushes
(`--provenance=mode=max --sbom=true`: an attestation manifest per platform image), buildx's
default min provenance and BUILDX_NO_DEFAULT_ATTESTATIONS, secrets never valued, an SBOM of a
root file system holding every kind of package the scanner reads, and `run`/`pull` of an
index that holds attestations."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from polybuild.attest.intoto import package_url
from polybuild.image import mediatypes as mt
from polybuild.platforms import Platform
from tests.conftest import import_busybox, require_platforms, require_root, require_tool, run_cli
from tests.registry.conftest import Registry
from tests.sbom.roots import debian_root, write

pytestmark = [pytest.mark.root, pytest.mark.qemu]

TWO = "linux/amd64,linux/arm64"
SECRET_VALUE = "s3cr3t-value-that-must-never-leave"
DOCKERFILE = """\
FROM --platform=$BUILDPLATFORM busybox AS build
ARG BUILDPLATFORM
ARG TARGETPLATFORM
ARG GREETING
RUN --mount=type=secret,id=tok test -s /run/secrets/tok && \\
    echo "$GREETING from $BUILDPLATFORM for $TARGETPLATFORM" > /log
FROM busybox
COPY rootfs/ /
COPY --from=build /log /log
"""
APK_DB = "P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n"


def polybuild(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    proc = run_cli(root, *args, env=env)
    assert proc.returncode == 0, f"polybuild {' '.join(args)}:\n{proc.stderr}"
    return str(proc.stdout)


def _context(tmp_path: Path) -> Path:
    ctx = tmp_path / "ctx"
    debian_root(ctx / "rootfs", tmp_path / "gowork")
    write(ctx / "rootfs/lib/apk/db/installed", APK_DB)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    return ctx


def _inspect(root: Path, ref: str, template: str) -> Any:
    return json.loads(polybuild(root, "imagetools", "inspect", ref, "--format", template))


def _raw(root: Path, ref: str) -> dict[str, Any]:
    return dict(json.loads(polybuild(root, "imagetools", "inspect", "--raw", ref)))


def _blob(registry: Registry, repo: str, digest: str) -> bytes:
    import urllib.request

    url = f"http://{registry.host}/v2/{repo}/blobs/{digest}"
    with urllib.request.urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


def _manifest(registry: Registry, repo: str, digest: str) -> dict[str, Any]:
    import urllib.request

    request = urllib.request.Request(
        f"http://{registry.host}/v2/{repo}/manifests/{digest}",
        headers={"Accept": mt.OCI_MANIFEST},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return dict(json.loads(answer.read()))


def test_push_with_max_provenance_and_an_sbom(
    tmp_path: Path, registry: Registry, docker_config: Path
) -> None:
    require_root()
    require_platforms(*TWO.split(","))
    skopeo = require_tool("skopeo")
    builder = tmp_path / "builder"
    import_busybox(builder)
    ctx = _context(tmp_path)
    secret = tmp_path / "tok"
    secret.write_text(SECRET_VALUE)
    repo = "attest/full"
    ref = f"{registry.host}/{repo}:1"
    polybuild(
        builder, "build", "--platform", TWO, "-t", ref, "--push",
        "--provenance=mode=max", "--sbom=true", "--secret", f"id=tok,src={secret}",
        "--build-arg", "GREETING=hello", str(ctx),
    )  # fmt: skip

    index = _raw(tmp_path / "viewer", ref)
    skopeo_raw = subprocess.run(
        [skopeo, "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert json.loads(skopeo_raw) == index
    entries = index["manifests"]
    assert [e["platform"] for e in entries] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
        {"architecture": "unknown", "os": "unknown"},
        {"architecture": "unknown", "os": "unknown"},
    ]
    images, attestations = entries[:2], entries[2:]
    for image, attestation in zip(images, attestations, strict=True):
        assert attestation["annotations"] == {
            "vnd.docker.reference.digest": image["digest"],
            "vnd.docker.reference.type": "attestation-manifest",
        }
        manifest = _manifest(registry, repo, attestation["digest"])
        assert manifest["artifactType"] == "application/vnd.docker.attestation.manifest.v1+json"
        assert manifest["subject"]["digest"] == image["digest"]
        kinds = [layer["annotations"]["in-toto.io/predicate-type"] for layer in manifest["layers"]]
        assert kinds == ["https://spdx.dev/Document", "https://slsa.dev/provenance/v1"]
        assert {layer["mediaType"] for layer in manifest["layers"]} == {mt.IN_TOTO}
        for layer in manifest["layers"]:
            statement = json.loads(_blob(registry, repo, layer["digest"]))
            of = Platform(image["platform"]["os"], image["platform"]["architecture"])
            assert statement["subject"] == [
                {  # BuildKit's RefToPURL (its own cases are in tests/attest/test_intoto.py)
                    "name": package_url("docker", ref, of),
                    "digest": {"sha256": image["digest"].removeprefix("sha256:")},
                }
            ]

    provenance = _inspect(tmp_path / "viewer", ref, "{{json .Provenance}}")
    for platform in TWO.split(","):
        slsa = provenance[platform]["SLSA"]
        request = slsa["buildDefinition"]["externalParameters"]["request"]
        assert request["frontend"] == "dockerfile.v0"
        assert request["args"]["build-arg:GREETING"] == "hello"  # mode=max keeps arg values
        assert request["secrets"] == [{"id": "tok"}]  # named, never valued
        deps = slsa["buildDefinition"]["resolvedDependencies"]
        # the base image, named as BuildKit names it (its familiar name), by the digest its
        # reference resolved to in this builder's store
        uris = {d["uri"] for d in deps}
        assert "pkg:docker/busybox@latest?platform=linux%2Famd64" in uris, deps  # build stage
        assert f"pkg:docker/busybox@latest?platform={platform.replace('/', '%2F')}" in uris
        meta = slsa["runDetails"]["metadata"]["buildkit_metadata"]
        assert meta["source"]["infos"][0]["language"] == "Dockerfile"
    # The secret's value is in no blob the registry holds (statements, configs, layers).
    for data in registry.storage.rglob("data"):
        assert SECRET_VALUE.encode() not in data.read_bytes(), data

    sbom = _inspect(tmp_path / "viewer", ref, "{{json .SBOM}}")
    purls = {
        ref["referenceLocator"]
        for package in sbom["linux/arm64"]["SPDX"]["packages"]
        for ref in package.get("externalRefs", [])
    }
    for wanted in (
        "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
        "pkg:pypi/attrs@23.1.0",
        "pkg:npm/left-pad@1.3.0",
        "pkg:npm/%40babel/core@7.24.0",
        "pkg:golang/example.com/hello@%28devel%29",
        "pkg:maven/org.apache.commons/commons-lang3@3.14.0",
    ):
        assert wanted in purls, sorted(purls)
    assert any(p.startswith("pkg:apk/") and "/musl@1.2.4-r2" in p for p in purls), purls
    assert any(p.startswith("pkg:golang/stdlib@") for p in purls), purls

    # Another machine pulls and runs the arm64 image: the attestation entries are skipped.
    other = tmp_path / "other"
    polybuild(other, "pull", "--platform", "linux/arm64", ref)
    out = polybuild(other, "run", "--platform", "linux/arm64", ref, "cat", "/log")
    assert out.strip() == "hello from linux/amd64 for linux/arm64"


def test_default_min_provenance_and_turning_it_off(
    tmp_path: Path, registry: Registry, docker_config: Path
) -> None:
    require_root()
    builder = tmp_path / "builder"
    import_busybox(builder)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nARG WORD\nRUN echo $WORD > /word\n")
    ref = f"{registry.host}/attest/default:1"
    polybuild(builder, "build", "-t", ref, "--push", "--build-arg", "WORD=private", str(ctx))
    index = _raw(tmp_path / "viewer", ref)
    # One platform, pushed: an index all the same, as buildx's image exporter writes it.
    assert index["mediaType"] == mt.OCI_INDEX
    assert [e["platform"]["os"] for e in index["manifests"]] == ["linux", "unknown"]
    provenance = _inspect(tmp_path / "viewer", ref, "{{json .Provenance}}")
    slsa = provenance["SLSA"]  # one platform: buildx's single-image shape
    request = slsa["buildDefinition"]["externalParameters"]["request"]
    assert "args" not in request  # mode=min: no build-arg values
    assert "buildConfig" not in slsa["buildDefinition"]["internalParameters"]
    assert slsa["runDetails"]["metadata"]["buildkit_completeness"]["request"] is False

    off = f"{registry.host}/attest/default:off"
    polybuild(
        builder, "build", "-t", off, "--push", str(ctx),
        env={"BUILDX_NO_DEFAULT_ATTESTATIONS": "1"},
    )  # fmt: skip
    assert _raw(tmp_path / "viewer", off)["mediaType"] == mt.OCI_MANIFEST


def test_outputs_that_carry_the_default_provenance(tmp_path: Path) -> None:
    """An OCI tarball of several platforms carries buildx's default provenance, one of a
    single platform and an image loaded here (`--load`) do not; asked for
    explicitly, a single-platform OCI tarball carries it."""
    require_root()
    builder = tmp_path / "builder"
    import_busybox(builder)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY Dockerfile /\n")

    def oci_index(*args: str) -> dict[str, Any]:
        out = tmp_path / "out.tar"
        polybuild(builder, "build", *args, "-o", f"type=oci,dest={out}", str(ctx))
        import tarfile

        with tarfile.open(out) as archive:
            top = json.load(archive.extractfile("index.json"))  # type: ignore[arg-type]
            digest = top["manifests"][0]["digest"].removeprefix("sha256:")
            member = archive.extractfile(f"blobs/sha256/{digest}")
            assert member is not None
            return dict(json.load(member))

    several = oci_index("--platform", TWO)
    kinds = [
        e.get("annotations", {}).get("vnd.docker.reference.type") for e in several["manifests"]
    ]
    assert kinds == [None, None, "attestation-manifest", "attestation-manifest"]
    one = oci_index("--platform", "linux/amd64")
    assert one["mediaType"] == mt.OCI_MANIFEST
    asked = oci_index("--platform", "linux/amd64", "--provenance=true")
    assert [e["platform"]["os"] for e in asked["manifests"]] == ["linux", "unknown"]
    polybuild(builder, "build", "-t", "kept:1", "--load", str(ctx))
    shown = [line for line in polybuild(builder, "images").splitlines() if "kept" in line]
    assert len(shown) == 1 and "linux/amd64" in shown[0] and "unknown" not in shown[0], shown


def test_local_output_writes_statements_beside_each_platforms_files(tmp_path: Path) -> None:
    """`-o type=local` with attestations asked for: `provenance.json` and `sbom.spdx.json`
    in each platform's directory, statements whose subjects are that directory's files (as
    BuildKit's local exporter writes them); the default provenance alone writes nothing."""
    require_root()
    import hashlib

    builder = tmp_path / "builder"
    import_busybox(builder)
    ctx = tmp_path / "ctx"
    write(ctx / "app/node_modules/left-pad/package.json",
          '{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}')  # fmt: skip
    (ctx / "Dockerfile").write_text("FROM busybox\nCOPY app /app\n")
    plain = tmp_path / "plain"
    polybuild(builder, "build", "--platform", TWO, "-o", f"type=local,dest={plain}", str(ctx))
    # each platform's package.json and nothing else: the default provenance is inline-only
    assert [p.name for p in plain.rglob("*.json")] == ["package.json", "package.json"]
    out = tmp_path / "out"
    polybuild(builder, "build", "--platform", TWO, "--provenance=mode=max", "--sbom=true",
              "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    for platform in ("linux_amd64", "linux_arm64"):
        here = out / platform
        provenance = json.loads((here / "provenance.json").read_text())
        assert provenance["predicateType"] == "https://slsa.dev/provenance/v1"
        assert (here / "provenance.json").stat().st_mode & 0o777 == 0o600
        subjects = {s["name"]: s["digest"]["sha256"] for s in provenance["subject"]}
        package = "app/node_modules/left-pad/package.json"
        assert subjects[package] == hashlib.sha256((here / package).read_bytes()).hexdigest()
        assert "bin/busybox" in subjects and "provenance.json" not in subjects
        assert list(subjects) == sorted(subjects, key=lambda name: name.split("/"))
        sbom = json.loads((here / "sbom.spdx.json").read_text())
        assert sbom["predicateType"] == "https://spdx.dev/Document"
        purls = {
            ref["referenceLocator"]
            for package_ in sbom["predicate"]["packages"]
            for ref in package_.get("externalRefs", [])
        }
        assert "pkg:npm/left-pad@1.3.0" in purls


def test_sbom_scans_the_stages_that_ask_for_it(tmp_path: Path) -> None:
    """BUILDKIT_SBOM_SCAN_STAGE in a stage adds that stage's SBOM (`sbom-NAME.spdx.json`)
    beside the final image's; `scan-stage=true` scans every stage the target needs."""
    require_root()
    builder = tmp_path / "builder"
    import_busybox(builder)
    ctx = tmp_path / "ctx"
    write(ctx / "app/node_modules/left-pad/package.json",
          '{"name": "left-pad", "version": "1.3.0", "license": "WTFPL"}')  # fmt: skip
    write(ctx / "py/attrs-23.1.0.dist-info/METADATA",
          "Metadata-Version: 2.3\nName: attrs\nVersion: 23.1.0\n")  # fmt: skip
    (ctx / "Dockerfile").write_text(
        "FROM busybox AS deps\nARG BUILDKIT_SBOM_SCAN_STAGE=true\nCOPY app /app\n"
        "FROM busybox AS tools\nCOPY py /usr/lib/python3/dist-packages\n"
        "FROM busybox\nCOPY --from=deps /app/node_modules/left-pad/package.json /pkg.json\n"
        "COPY --from=tools /usr/lib/python3/dist-packages /py\n"
    )

    def purls(document: Path) -> set[str]:
        statement = json.loads(document.read_text())
        return {
            ref["referenceLocator"]
            for package in statement["predicate"]["packages"]
            for ref in package.get("externalRefs", [])
        }

    out = tmp_path / "out"
    polybuild(builder, "build", "--sbom=true", "-o", f"type=local,dest={out}", str(ctx))
    assert sorted(p.name for p in out.glob("sbom*.json")) == [
        "sbom-deps.spdx.json",
        "sbom.spdx.json",
    ]
    assert "pkg:npm/left-pad@1.3.0" in purls(out / "sbom-deps.spdx.json")
    assert not any(p.startswith("pkg:npm/") for p in purls(out / "sbom.spdx.json"))
    every = tmp_path / "every"
    polybuild(builder, "build", "--attest", "type=sbom,scan-stage=true",
              "-o", f"type=local,dest={every}", str(ctx))  # fmt: skip
    assert sorted(p.name for p in every.glob("sbom*.json")) == [
        "sbom-deps.spdx.json",
        "sbom-tools.spdx.json",
        "sbom.spdx.json",
    ]
    assert "pkg:pypi/attrs@23.1.0" in purls(every / "sbom-tools.spdx.json")
    none = tmp_path / "none"
    polybuild(builder, "build", "--sbom=true", "--build-arg", "BUILDKIT_SBOM_SCAN_STAGE=false",
              "-o", f"type=local,dest={none}", str(ctx))  # fmt: skip
    assert sorted(p.name for p in none.glob("sbom*.json")) == ["sbom.spdx.json"]


def test_a_link_in_the_image_where_a_statement_goes_is_replaced_not_followed(
    tmp_path: Path,
) -> None:
    """An image holding `provenance.json` as a link to a file outside the export: the local
    output's statement replaces the link; the file it pointed at is untouched."""
    require_root()
    builder = tmp_path / "builder"
    import_busybox(builder)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(f"FROM busybox\nRUN ln -s {victim} /provenance.json\n")
    out = tmp_path / "out"
    polybuild(builder, "build", "--provenance=true", "-o", f"type=local,dest={out}", str(ctx))
    statement = out / "provenance.json"
    assert statement.is_file() and not statement.is_symlink()
    assert json.loads(statement.read_text())["predicateType"].startswith("https://slsa.dev/")
    assert victim.read_text() == "keep me\n"
