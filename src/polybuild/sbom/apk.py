"""apk's database: the installed packages of /lib/apk/db/installed (P:, V:, A:, L:, o: and the
F:/R: file lists)."""

from __future__ import annotations

from collections.abc import Iterator

from packageurl import PackageURL

from polybuild.sbom.package import Distro, Package

INSTALLED_PATHS = ("/lib/apk/db/installed", "/usr/lib/apk/db/installed")


def _records(text: str) -> Iterator[list[tuple[str, str]]]:
    record: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            if record:
                yield record
            record = []
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1:
            record.append((key, value))
    if record:
        yield record


def parse_installed(data: bytes, evidence: str, distro: Distro | None) -> list[Package]:
    """One package per record that has a name and a version."""
    found: list[Package] = []
    for record in _records(data.decode("utf-8", "surrogateescape")):
        fields: dict[str, str] = {}
        files: list[str] = []
        directory = ""
        for key, value in record:
            if key == "F":
                directory = value.strip("/")
            elif key == "R":
                files.append(f"/{directory}/{value}" if directory else f"/{value}")
            elif key not in fields:
                fields[key] = value
        name, version = fields.get("P", ""), fields.get("V", "")
        if not name or not version:
            continue
        found.append(
            Package(
                kind="apk",
                name=name,
                version=version,
                purl=purl(name, version, fields.get("A", ""), fields.get("o", ""), distro),
                license=fields.get("L", ""),
                evidence=(evidence,),
                files=tuple(files),
            )
        )
    return found


def purl(name: str, version: str, arch: str, origin: str, distro: Distro | None) -> str:
    """pkg:apk/<ID>/<name>@<version>?arch=..&distro=<ID>-<VERSION_ID>[&upstream=<origin>]."""
    qualifiers = {"arch": arch} if arch else {}
    if origin and origin != name:
        qualifiers["upstream"] = origin
    if distro is not None:
        qualifiers["distro"] = distro.qualifier
    namespace = distro.id if distro is not None else "alpine"
    return PackageURL(
        type="apk", namespace=namespace, name=name, version=version, qualifiers=qualifiers
    ).to_string()
