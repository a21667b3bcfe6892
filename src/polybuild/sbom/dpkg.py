"""dpkg's database: the installed packages of /var/lib/dpkg/status (and distroless images'
status.d/ files), with the files each one's info/<name>[:<arch>].list says it owns."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packageurl import PackageURL

from polybuild.sbom.package import Distro, Package

STATUS_PATHS = ("/var/lib/dpkg/status",)
STATUS_DIRS = ("/var/lib/dpkg/status.d",)
INFO_DIR = "/var/lib/dpkg/info"


@dataclass(frozen=True, slots=True)
class DpkgEntry:
    """One installed package's stanza."""

    name: str
    version: str
    architecture: str
    source: str
    source_version: str
    license: str


def is_status_file(path: str) -> bool:
    if path in STATUS_PATHS:
        return True
    directory, _, name = path.rpartition("/")
    # status.d/ also holds <name>.md5sums beside each stanza file
    return directory in STATUS_DIRS and not name.endswith(".md5sums")


def _stanzas(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
        elif line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
        else:
            name, sep, value = line.partition(":")
            if sep:
                key = name.strip().lower()
                fields[key] = value.strip()
    if fields:
        yield fields


def parse_status(data: bytes) -> list[DpkgEntry]:
    """Every stanza whose Status is `install ok installed` (a status.d file has no Status
    field: its packages are installed)."""
    found: list[DpkgEntry] = []
    for fields in _stanzas(data.decode("utf-8", "replace")):
        status = fields.get("status")
        if status is not None and status.split() != ["install", "ok", "installed"]:
            continue
        name, version = fields.get("package", ""), fields.get("version", "")
        if not name or not version:
            continue
        source, _, source_version = fields.get("source", "").partition(" ")
        found.append(
            DpkgEntry(
                name=name,
                version=version,
                architecture=fields.get("architecture", ""),
                source=source,
                source_version=source_version.strip("()"),
                license=fields.get("license", ""),
            )
        )
    return found


def list_paths(entry: DpkgEntry) -> tuple[str, ...]:
    """The .list files that may hold the package's files, most specific first."""
    plain = f"{INFO_DIR}/{entry.name}.list"
    if entry.architecture and entry.architecture != "all":
        return (f"{INFO_DIR}/{entry.name}:{entry.architecture}.list", plain)
    return (plain,)


def parse_list(data: bytes) -> tuple[str, ...]:
    """The paths of a .list file (one a line; "/." is the root itself)."""
    lines = data.decode("utf-8", "surrogateescape").splitlines()
    return tuple(line for line in lines if line.startswith("/") and line != "/.")


def purl(entry: DpkgEntry, distro: Distro | None) -> str:
    """pkg:deb/<ID>/<name>@<version>?arch=..&distro=<ID>-<VERSION_ID>[&upstream=..] as syft."""
    qualifiers = {"arch": entry.architecture} if entry.architecture else {}
    if entry.source:
        qualifiers["upstream"] = (
            f"{entry.source}@{entry.source_version}" if entry.source_version else entry.source
        )
    if distro is not None:
        qualifiers["distro"] = distro.qualifier
    namespace = distro.id if distro is not None else "debian"
    return PackageURL(
        type="deb",
        namespace=namespace,
        name=entry.name,
        version=entry.version,
        qualifiers=qualifiers,
    ).to_string()


def package(
    entry: DpkgEntry,
    distro: Distro | None,
    evidence: tuple[str, ...],
    files: tuple[str, ...],
) -> Package:
    return Package(
        kind="deb",
        name=entry.name,
        version=entry.version,
        purl=purl(entry, distro),
        license=entry.license,
        evidence=evidence,
        files=files,
    )
