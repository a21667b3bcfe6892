"""The values a root file system scan produces: packages, their evidence files, the distro."""

from __future__ import annotations

from dataclasses import dataclass, field

KIB = 1 << 10
MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Bounds on what one scan reads; anything past a bound is skipped with a warning.

    The defaults fit real images: a Debian status file is a few MiB, an rpmdb.sqlite tens of
    MiB, a METADATA or package.json tens of KiB."""

    metadata_bytes: int = 1 * MIB  # one METADATA, PKG-INFO, package.json, os-release, .list
    database_bytes: int = 64 * MIB  # dpkg status, apk installed, one status.d file
    rpmdb_bytes: int = 512 * MIB  # copied before sqlite opens it
    rpm_header_bytes: int = 16 * MIB  # one header blob
    rpm_packages: int = 100_000
    archive_bytes: int = 1 << 30  # a jar/war/ear larger than this is not opened
    archive_members: int = 100_000
    archive_directory_bytes: int = 32 * MIB  # a zip's central directory, loaded whole
    manifest_bytes: int = 256 * KIB  # MANIFEST.MF or pom.properties inside an archive
    elf_window: int = 1 * MIB  # bytes read at once looking for Go build info
    elf_scan_bytes: int = 64 * MIB  # bytes of a section or segment searched for the magic
    go_buildinfo_bytes: int = 1 * MIB  # the version and module strings
    hash_bytes: int = 1 << 30  # evidence files larger than this get no digests
    depth: int = 256  # directory levels below the root; deeper ones are not walked
    warnings: int = 1_000  # warnings kept (the count is always exact)


@dataclass(frozen=True, slots=True)
class Distro:
    """The distribution an /etc/os-release names (ID, VERSION_ID, ID_LIKE)."""

    id: str
    version_id: str = ""
    id_like: tuple[str, ...] = ()

    @property
    def qualifier(self) -> str:
        """The `distro` purl qualifier as syft writes it: `debian-12`, `alpine-3.20.1`."""
        return f"{self.id}-{self.version_id}" if self.version_id else self.id


@dataclass(frozen=True, slots=True)
class Package:
    """One package found in the file system.

    `kind` is the ecosystem (deb, apk, rpm, python, npm, go-module, java-archive);
    `license` the declared licence exactly as the metadata writes it ("" when none);
    `evidence` the metadata files that show the package is there (absolute paths inside the
    root); `files` the files the package manager says the package owns."""

    kind: str
    name: str
    version: str
    purl: str
    license: str = ""
    evidence: tuple[str, ...] = ()
    files: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, str, str, str, tuple[str, ...]]:
        return (self.kind, self.name, self.version, self.purl, self.evidence)


@dataclass(frozen=True, slots=True)
class FileDigest:
    """An evidence file's content digests (hex), for SPDX `files` entries."""

    path: str
    sha1: str
    sha256: str


@dataclass(frozen=True, slots=True)
class Inventory:
    """The result of scanning one root file system, in a deterministic order."""

    packages: tuple[Package, ...]
    digests: tuple[FileDigest, ...] = ()
    distro: Distro | None = None
    files_seen: int = 0
    warning_count: int = 0
    warnings: tuple[str, ...] = field(default=())
