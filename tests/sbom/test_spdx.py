"""The SPDX 2.3 document: valid for spdx-tools' parser and validator, shaped as syft writes it,
the same bytes for the same scan and time."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from polybuild.sbom import Inventory, Package, spdx_document
from polybuild.sbom.licenses import spdx_expression
from tests.sbom.spdx_check import validation_errors

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_documents_of_every_root_are_valid(
    debian: Inventory, alpine: Inventory, fedora: Inventory
) -> None:
    for inventory in (debian, alpine, fedora):
        document = spdx_document(inventory, name="registry.test/app:1", created=CREATED)
        assert validation_errors(document) == []


def test_document_shape(debian: Inventory) -> None:
    document = spdx_document(debian, name="registry.test/app:1", created=CREATED)
    assert list(document) == [
        "spdxVersion", "dataLicense", "SPDXID", "name", "documentNamespace", "creationInfo",
        "packages", "files", "hasExtractedLicensingInfos", "relationships",
    ]  # fmt: skip
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["dataLicense"] == "CC0-1.0"
    assert document["creationInfo"] == {
        "creators": ["Tool: polybuild-0.1.0"],
        "created": "2026-01-02T03:04:05Z",
    }
    packages = document["packages"]
    assert isinstance(packages, list)
    root, *rest = packages
    assert root["SPDXID"] == "SPDXRef-DocumentRoot-Directory-registry.test-app-1"
    bash = next(p for p in rest if p["name"] == "bash")
    assert bash["versionInfo"] == "5.2.15-2+b2"
    assert bash["downloadLocation"] == "NOASSERTION"
    assert bash["licenseDeclared"] == "NOASSERTION"
    assert bash["externalRefs"] == [
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:deb/debian/bash@5.2.15-2%2Bb2?arch=amd64&distro=debian-12",
        }
    ]
    relationships = document["relationships"]
    assert isinstance(relationships, list)
    assert relationships[0] == {
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relatedSpdxElement": root["SPDXID"],
        "relationshipType": "DESCRIBES",
    }
    contains = {
        r["relatedSpdxElement"] for r in relationships if r["relationshipType"] == "CONTAINS"
    }
    assert contains == {p["SPDXID"] for p in rest}
    files = {f["SPDXID"]: f["fileName"] for f in document["files"]}  # type: ignore[attr-defined]
    evident = {
        files[r["relatedSpdxElement"]]
        for r in relationships
        if r["spdxElementId"] == bash["SPDXID"] and r["relationshipType"] == "OTHER"
    }
    assert evident == {"./var/lib/dpkg/status", "./var/lib/dpkg/info/bash.list"}


def test_licences_that_are_not_expressions_become_license_refs(debian: Inventory) -> None:
    document = spdx_document(debian, name="app", created=CREATED)
    declared = {p["name"]: p["licenseDeclared"] for p in document["packages"]}  # type: ignore[attr-defined]
    assert declared["tiny"] == "LicenseRef-Custom-License"
    assert declared["left-pad"] == "WTFPL"
    assert declared["stdlib"] == "BSD-3-Clause"
    assert document["hasExtractedLicensingInfos"] == [
        {
            "licenseId": "LicenseRef-Custom-License",
            "extractedText": "Custom License",
            "name": "Custom License",
        }
    ]


def test_the_same_scan_gives_the_same_bytes(debian: Inventory) -> None:
    first = json.dumps(spdx_document(debian, name="app", created=CREATED))
    again = json.dumps(spdx_document(debian, name="app", created=CREATED))
    assert first == again
    other = spdx_document(debian, name="other", created=CREATED)
    assert other["documentNamespace"] != json.loads(first)["documentNamespace"]


def test_hostile_strings_still_give_a_valid_document() -> None:
    odd = [
        Package("python", "caf\udce9", "1.0", "pkg:pypi/caf@1.0", license="\udcff GPL (v2)"),
        Package("npm", "x", "1", "pkg:npm/x@1", license="GPL 2"),
        Package("npm", "y", "1", "pkg:npm/y@1", license="GPL-2"),  # the same LicenseRef slug
        Package("npm", "z", "1", "pkg:npm/z@1", license="MIT OR"),
        Package("npm", "w", "1", "pkg:npm/w@1", license="(mit OR apache-2.0) AND bsd-3-clause"),
        Package(
            "apk", "v", "1", "pkg:apk/alpine/v@1", license="GPL-2.0-or-later WITH Bogus-exception"
        ),
    ]
    document = spdx_document(Inventory(packages=tuple(odd)), name="/\udcffroot", created=CREATED)
    assert validation_errors(document) == []
    declared = [p["licenseDeclared"] for p in document["packages"]][1:]  # type: ignore[attr-defined]
    assert declared[4] == "(MIT OR Apache-2.0) AND BSD-3-Clause"
    assert len(set(declared[1:4])) == 3


def test_expressions() -> None:
    assert spdx_expression("MIT") == "MIT"
    assert spdx_expression("gpl-2.0+ with classpath-exception-2.0") == (
        "GPL-2.0+ WITH Classpath-exception-2.0"
    )
    assert spdx_expression("MIT AND (Apache-2.0 OR BSD-3-Clause)") == (
        "MIT AND (Apache-2.0 OR BSD-3-Clause)"
    )
    for text in ("", "MIT OR", "(MIT", "MIT)", "BSD-like", "GPLv2", "MIT/X11", "Zlib custom-thing"):
        assert spdx_expression(text) is None, text
    assert spdx_expression("(" * 50 + "MIT" + ")" * 50) is None  # nesting is bounded


def test_the_validator_catches_what_the_writer_avoids(alpine: Inventory) -> None:
    """A control: the checks above can fail (an unknown identifier, an absolute file name)."""
    document = spdx_document(alpine, name="app", created=CREATED)
    document["packages"][1]["licenseDeclared"] = "Not-A-Listed-Licence"  # type: ignore[index]
    document["files"][0]["fileName"] = "/lib/apk/db/installed"  # type: ignore[index]
    assert len(validation_errors(document)) == 2
