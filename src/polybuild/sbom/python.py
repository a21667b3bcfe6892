"""Python distributions: *.dist-info/METADATA and *.egg-info/PKG-INFO (core metadata, an
email-header format) under site-packages or dist-packages."""

from __future__ import annotations

import email.parser
import email.policy
import re

from packageurl import PackageURL

from polybuild.sbom.package import Package

_NORMALISE = re.compile(r"[-_.]+")
# Trove classifiers that name one SPDX licence (the commonest; others stay as written).
_CLASSIFIERS = {
    "Apache Software License": "Apache-2.0",
    "BSD License": "BSD-3-Clause",
    "MIT License": "MIT",
    "ISC License (ISCL)": "ISC",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0",
    "Python Software Foundation License": "PSF-2.0",
    "The Unlicense (Unlicense)": "Unlicense",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
}


def is_metadata(path: str) -> bool:
    """A METADATA of a .dist-info or a PKG-INFO of an .egg-info in a site or dist packages."""
    if "/site-packages/" not in path and "/dist-packages/" not in path:
        return False
    directory, _, name = path.rpartition("/")
    return (name == "METADATA" and directory.endswith(".dist-info")) or (
        name == "PKG-INFO" and directory.endswith(".egg-info")
    )


def normalise(name: str) -> str:
    """PEP 503's normalised project name, as purls for PyPI use it."""
    return _NORMALISE.sub("-", name).lower()


def declared_license(headers: email.message.Message) -> str:
    """License-Expression, else a one-line License field, else the licence classifiers."""
    expression = str(headers.get("License-Expression", "") or "").strip()
    if expression:
        return expression
    field = str(headers.get("License", "") or "").strip()
    if field and "\n" not in field and len(field) <= 200 and field.upper() != "UNKNOWN":
        return field
    found = []
    for classifier in headers.get_all("Classifier", []) or []:
        parts = [part.strip() for part in str(classifier).split("::")]
        if parts[0] == "License" and len(parts) > 1 and parts[-1] != "OSI Approved":
            found.append(_CLASSIFIERS.get(parts[-1], parts[-1]))
    return " AND ".join(dict.fromkeys(found))


def parse_metadata(data: bytes, evidence: str) -> Package | None:
    """The distribution a core-metadata file describes, or None without a Name and Version."""
    text = data.decode("utf-8", "replace")
    body = text.find("\n\n")
    headers = email.parser.Parser(policy=email.policy.compat32).parsestr(
        text if body < 0 else text[: body + 1], headersonly=True
    )
    name = str(headers.get("Name", "") or "").strip()
    version = str(headers.get("Version", "") or "").strip()
    if not name or not version:
        return None
    return Package(
        kind="python",
        name=name,
        version=version,
        purl=PackageURL(type="pypi", name=normalise(name), version=version).to_string(),
        license=declared_license(headers),
        evidence=(evidence,),
    )
