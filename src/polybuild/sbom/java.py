"""Java archives (.jar, .war, .ear): META-INF/maven/<group>/<artifact>/pom.properties and
META-INF/MANIFEST.MF, read from the zip's central directory with every member's size checked
before it is read and the read itself capped (a zip bomb or a lying header reads no more)."""

from __future__ import annotations

import os
import struct
import zipfile
from collections.abc import Callable

from packageurl import PackageURL

from polybuild.sbom.package import Package, ScanLimits

EXTENSIONS = (".jar", ".war", ".ear")
MANIFEST = "META-INF/MANIFEST.MF"


def is_archive(name: str) -> bool:
    return name.lower().endswith(EXTENSIONS)


_EOCD, _ZIP64_LOCATOR, _ZIP64_EOCD = b"PK\x05\x06", b"PK\x06\x07", b"PK\x06\x06"
_EOCD_SEARCH = 22 + 0xFFFF  # the record and the longest comment


def directory_size(fd: int, size: int) -> tuple[int, int] | None:
    """(members, central directory bytes) from the end of central directory record (zip64's
    when it has one), read before zipfile loads the whole directory into memory; None when
    the file has no such record."""
    start = max(0, size - _EOCD_SEARCH)
    tail = os.pread(fd, size - start, start)
    at = tail.rfind(_EOCD)
    if at < 0 or at + 22 > len(tail):
        return None
    members, directory = struct.unpack_from("<HI", tail, at + 10)
    if members != 0xFFFF and directory != 0xFFFFFFFF:
        return members, directory
    locator = tail[at - 20 : at] if at >= 20 else b""
    if not locator.startswith(_ZIP64_LOCATOR):
        return None
    (record_at,) = struct.unpack_from("<Q", locator, 8)
    record = os.pread(fd, 56, record_at) if record_at < size else b""
    if len(record) < 56 or not record.startswith(_ZIP64_EOCD):
        return None
    members64, directory64 = struct.unpack_from("<QQ", record, 32)
    return members64, directory64


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, cap: int) -> bytes | None:
    if info.file_size > cap or info.compress_size > cap or info.flag_bits & 0x1:  # encrypted
        return None
    with archive.open(info) as member:
        data = member.read(cap + 1)
    return data if len(data) <= cap else None


def parse_properties(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        for separator in ("=", ":"):
            key, sep, value = line.partition(separator)
            if sep:
                values[key.strip()] = value.strip()
                break
    return values


def parse_manifest(text: str) -> dict[str, str]:
    """The main section of a MANIFEST.MF (72-byte lines continued by a leading space)."""
    values: dict[str, str] = {}
    key = ""
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and key:
            values[key] += line[1:]
            continue
        key, sep, value = line.partition(":")
        if not sep:
            key = ""
            continue
        key = key.strip()
        values[key] = value.strip()
    return values


def _maven_purl(group: str, artifact: str, version: str) -> str:
    return PackageURL(
        type="maven", namespace=group or None, name=artifact, version=version or None
    ).to_string()


def read_archive(
    fd: int, path: str, limits: ScanLimits, warn: Callable[[str], None]
) -> list[Package]:
    """The packages one archive describes: one per pom.properties, else one from its manifest."""
    try:
        shape = directory_size(fd, os.fstat(fd).st_size)
    except (OSError, struct.error):
        return []
    if shape is None:
        return []
    if shape[0] > limits.archive_members or shape[1] > limits.archive_directory_bytes:
        warn(f"{path}: {shape[0]} members in {shape[1]} bytes of directory, not read")
        return []
    with os.fdopen(os.dup(fd), "rb") as handle:
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return []
        with archive:
            members = archive.infolist()
            if len(members) > limits.archive_members:
                warn(f"{path}: more than {limits.archive_members} members, not read")
                return []
            try:
                return _packages(archive, members, path, limits)
            except (
                zipfile.BadZipFile,
                OSError,
                ValueError,
                EOFError,
                NotImplementedError,
            ) as error:
                warn(f"{path}: {error}")
                return []


def _packages(
    archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], path: str, limits: ScanLimits
) -> list[Package]:
    manifest: dict[str, str] = {}
    found: list[Package] = []
    for info in members:
        name = info.filename
        if name == MANIFEST:
            data = _member(archive, info, limits.manifest_bytes)
            manifest = parse_manifest(data.decode("utf-8", "replace")) if data else {}
    license = manifest.get("Bundle-License", "")
    for info in members:
        parts = info.filename.split("/")
        if len(parts) != 5 or parts[:2] != ["META-INF", "maven"] or parts[4] != "pom.properties":
            continue
        data = _member(archive, info, limits.manifest_bytes)
        if data is None:
            continue
        values = parse_properties(data.decode("utf-8", "replace"))
        group, artifact = values.get("groupId", parts[2]), values.get("artifactId", parts[3])
        version = values.get("version", "")
        if artifact and version:
            found.append(
                Package(
                    kind="java-archive",
                    name=artifact,
                    version=version,
                    purl=_maven_purl(group, artifact, version),
                    license=license,
                    evidence=(path,),
                )
            )
    if found or not manifest:
        return found
    stem = path.rpartition("/")[2].rsplit(".", 1)[0]
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    name = manifest.get("Implementation-Title") or symbolic or stem
    version = manifest.get("Implementation-Version") or manifest.get("Bundle-Version", "")
    group = manifest.get("Implementation-Vendor-Id", "")
    if not version:
        return []
    return [
        Package(
            kind="java-archive",
            name=name,
            version=version,
            purl=_maven_purl(group, name, version),
            license=license,
            evidence=(path,),
        )
    ]
