"""An Inventory as an SPDX 2.3 JSON document, shaped as syft (BuildKit's default scanner,
docker/buildkit-syft-scanner) writes it: a root package the document DESCRIBES, which CONTAINS
every package; each package with its purl and declared licence, related to the files that
evidence it (OTHER, "evident-by") as syft relates them. A dict ready for json.dumps, its keys
and lists in a fixed order, so one inventory and one `created` give the same bytes."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from polybuild._version import __version__
from polybuild.sbom.licenses import spdx_expression
from polybuild.sbom.package import Inventory, Package

NOASSERTION = "NOASSERTION"
_SAFE = re.compile(r"[^A-Za-z0-9.\-]+")
_SOURCES = {
    "deb": "DPKG DB",
    "apk": "APK DB",
    "rpm": "RPM DB",
    "python": "installed python package manifest file",
    "npm": "installed node module manifest file",
    "go-module": "go module information",
    "java-archive": "installed java archive",
}
_EVIDENT_BY = "evident-by: indicates the package's existence is evident by the given file"


def _slug(text: str, limit: int = 64) -> str:
    return _SAFE.sub("-", text).strip("-")[:limit] or "x"


def _short_hash(*parts: str) -> str:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()
    return digest[:16]


def _text(value: str) -> str:
    """Valid Unicode for JSON: names from the file system may hold undecodable bytes."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class _Licenses:
    """Declared licence strings -> an expression, or a LicenseRef with its extracted text."""

    def __init__(self) -> None:
        self.refs: dict[str, str] = {}  # LicenseRef id -> the declared text
        self.by_text: dict[str, str] = {}

    def declared(self, text: str) -> str:
        text = _text(text).strip()
        if not text:
            return NOASSERTION
        expression = spdx_expression(text)
        if expression is not None:
            return expression
        known = self.by_text.get(text)
        if known is not None:
            return known
        ref = f"LicenseRef-{_slug(text)}"
        if ref in self.refs:
            ref = f"{ref}-{_short_hash(text)[:8]}"
        self.refs[ref] = text
        self.by_text[text] = ref
        return ref

    def extracted(self) -> list[dict[str, str]]:
        return [
            {"licenseId": ref, "extractedText": text, "name": text[:200]}
            for ref, text in self.refs.items()
        ]


def _package_id(package: Package) -> str:
    key = _short_hash(package.kind, package.purl, *package.evidence)
    return f"SPDXRef-Package-{_slug(package.kind)}-{_slug(package.name)}-{key}"


def _file_id(path: str) -> str:
    return f"SPDXRef-File-{_slug(path.rpartition('/')[2], 32)}-{_short_hash(path)}"


def _package(package: Package, spdx_id: str, licenses: _Licenses) -> dict[str, object]:
    source = _SOURCES.get(package.kind, package.kind)
    return {
        "name": _text(package.name),
        "SPDXID": spdx_id,
        "versionInfo": _text(package.version),
        "supplier": NOASSERTION,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "sourceInfo": _text(f"acquired package info from {source}: {', '.join(package.evidence)}"),
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": licenses.declared(package.license),
        "copyrightText": NOASSERTION,
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": package.purl,
            }
        ],
    }


def _relationship(element: str, kind: str, related: str, comment: str = "") -> dict[str, str]:
    entry = {"spdxElementId": element, "relatedSpdxElement": related, "relationshipType": kind}
    if comment:
        entry["comment"] = comment
    return entry


def default_namespace(name: str, packages: Iterable[Package]) -> str:
    """A namespace unique to the document's content and name, the same on every run (SPDX
    wants a unique URI; a random one, as syft makes, would break reproducible attestations)."""
    content = _short_hash(name, *(f"{p.purl}\0{','.join(p.evidence)}" for p in packages))
    return f"https://polybuild.invalid/spdx/{_slug(name)}-{uuid.uuid5(uuid.NAMESPACE_URL, content)}"


def spdx_document(
    inventory: Inventory,
    *,
    name: str,
    created: datetime,
    namespace: str | None = None,
) -> dict[str, object]:
    """The SPDX 2.3 document for a scanned root file system called `name` (an image reference
    or a path); `created` is the caller's (SOURCE_DATE_EPOCH or the build's time), so the
    output is reproducible."""
    licenses = _Licenses()
    root_id = f"SPDXRef-DocumentRoot-Directory-{_slug(name)}"
    packages: list[dict[str, object]] = [
        {
            "name": _text(name),
            "SPDXID": root_id,
            "supplier": NOASSERTION,
            "downloadLocation": NOASSERTION,
            "filesAnalyzed": False,
            "licenseConcluded": NOASSERTION,
            "licenseDeclared": NOASSERTION,
            "copyrightText": NOASSERTION,
            "primaryPackagePurpose": "FILE",
        }
    ]
    relationships = [_relationship("SPDXRef-DOCUMENT", "DESCRIBES", root_id)]
    evidence_links: list[dict[str, str]] = []
    digests = {digest.path: digest for digest in inventory.digests}
    seen: set[str] = set()
    for package in inventory.packages:
        spdx_id = _package_id(package)
        if spdx_id in seen:  # the same package found twice in the same files
            continue
        seen.add(spdx_id)
        packages.append(_package(package, spdx_id, licenses))
        relationships.append(_relationship(root_id, "CONTAINS", spdx_id))
        evidence_links.extend(
            _relationship(spdx_id, "OTHER", _file_id(path), _EVIDENT_BY)
            for path in package.evidence
            if path in digests
        )
    files = [
        {
            "fileName": _text("." + digest.path),
            "SPDXID": _file_id(digest.path),
            "checksums": [
                {"algorithm": "SHA1", "checksumValue": digest.sha1},
                {"algorithm": "SHA256", "checksumValue": digest.sha256},
            ],
            "licenseConcluded": NOASSERTION,
            "licenseInfoInFiles": [NOASSERTION],
            "copyrightText": NOASSERTION,
        }
        for digest in inventory.digests
    ]
    document: dict[str, object] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": _text(name),
        "documentNamespace": namespace or default_namespace(name, inventory.packages),
        "creationInfo": {
            "creators": [f"Tool: polybuild-{__version__}"],
            "created": created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        "packages": packages,
        "files": files,
    }
    extracted = licenses.extracted()
    if extracted:
        document["hasExtractedLicensingInfos"] = extracted
    document["relationships"] = relationships + evidence_links
    return document
