"""scan_rootfs: one streaming walk of a root file system, each file handed to the cataloger
its path or kind calls for; the result is an Inventory in a deterministic order.

Memory stays bounded by what the result holds (packages, their file lists, evidence digests)
plus one directory listing per level of the current path: nothing is kept per file seen."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.sbom import apk, dpkg, golang, java, npm, python, rpm
from polybuild.sbom.distro import OS_RELEASE_PATHS, parse_os_release
from polybuild.sbom.package import Distro, FileDigest, Inventory, Package, ScanLimits
from polybuild.sbom.walk import FoundFile, open_regular, read_beneath, read_found, walk

_HASH_CHUNK = 1 << 20


@dataclass(slots=True)
class _Scan:
    root_fd: int
    limits: ScanLimits
    scratch: Path
    distro: Distro | None = None
    packages: list[Package] = field(default_factory=list)
    digests: dict[str, FileDigest] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0
    files_seen: int = 0

    def warn(self, message: str) -> None:
        self.warning_count += 1
        if len(self.warnings) < self.limits.warnings:
            self.warnings.append(message)

    def digest_bytes(self, path: str, data: bytes) -> None:
        self.digests[path] = FileDigest(
            path,
            hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            hashlib.sha256(data).hexdigest(),
        )

    def digest_fd(self, path: str, fd: int, size: int) -> None:
        if size > self.limits.hash_bytes:
            return
        sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
        offset = 0
        while offset <= self.limits.hash_bytes:
            chunk = os.pread(fd, _HASH_CHUNK, offset)
            if not chunk:
                self.digests[path] = FileDigest(path, sha1.hexdigest(), sha256.hexdigest())
                return
            sha1.update(chunk)
            sha256.update(chunk)
            offset += len(chunk)

    def read(self, found: FoundFile, cap: int) -> bytes | None:
        data = read_found(found, cap)
        if data is None:
            self.warn(f"{found.path}: larger than {cap} bytes or not a regular file, not read")
        else:
            self.digest_bytes(found.path, data)
        return data


def _dpkg(scan: _Scan, found: FoundFile) -> None:
    data = scan.read(found, scan.limits.database_bytes)
    if data is None:
        return
    for entry in dpkg.parse_status(data):
        evidence = [found.path]
        files: tuple[str, ...] = ()
        if found.path in dpkg.STATUS_PATHS:
            for candidate in dpkg.list_paths(entry):
                listing = read_beneath(scan.root_fd, candidate, scan.limits.database_bytes)
                if listing is not None:
                    scan.digest_bytes(candidate, listing)
                    evidence.append(candidate)
                    files = dpkg.parse_list(listing)
                    break
        scan.packages.append(dpkg.package(entry, scan.distro, tuple(evidence), files))


def _apk(scan: _Scan, found: FoundFile) -> None:
    data = scan.read(found, scan.limits.database_bytes)
    if data is not None:
        scan.packages.extend(apk.parse_installed(data, found.path, scan.distro))


def _copy(scan: _Scan, dir_fd: int, name: str, target: Path) -> bool:
    """Copy a regular file of the tree into the scratch directory, at most rpmdb_bytes."""
    fd = open_regular(dir_fd, name)
    if fd is None:
        return False
    cap = scan.limits.rpmdb_bytes
    with os.fdopen(fd, "rb") as source, target.open("xb") as copy:
        while chunk := source.read(min(_HASH_CHUNK, cap + 1 - copy.tell())):
            copy.write(chunk)
            if copy.tell() > cap:
                return False
    return True


def _rpm(scan: _Scan, found: FoundFile) -> None:
    if found.size > scan.limits.rpmdb_bytes:
        scan.warn(f"{found.path}: larger than {scan.limits.rpmdb_bytes} bytes, not read")
        return
    copy = scan.scratch / "rpmdb.sqlite"
    wal = scan.scratch / "rpmdb.sqlite-wal"
    try:
        if not _copy(scan, found.dir_fd, found.name, copy):
            return
        # rpm may leave committed transactions in the write-ahead log beside the database
        has_wal = _copy(scan, found.dir_fd, found.name + "-wal", wal) and wal.stat().st_size > 0
        with copy.open("rb") as written:
            scan.digest_fd(found.path, written.fileno(), scan.limits.rpmdb_bytes)
        scan.packages.extend(
            rpm.read_rpmdb(
                copy,
                found.path,
                scan.distro,
                with_wal=has_wal,
                max_packages=scan.limits.rpm_packages,
                max_header_bytes=scan.limits.rpm_header_bytes,
                warn=scan.warn,
            )
        )
    finally:
        for leftover in scan.scratch.iterdir():
            leftover.unlink()


def _python(scan: _Scan, found: FoundFile) -> None:
    data = scan.read(found, scan.limits.metadata_bytes)
    found_package = python.parse_metadata(data, found.path) if data is not None else None
    if found_package is not None:
        scan.packages.append(found_package)


def _npm(scan: _Scan, found: FoundFile) -> None:
    data = scan.read(found, scan.limits.metadata_bytes)
    found_package = npm.parse_package_json(data, found.path) if data is not None else None
    if found_package is not None:
        scan.packages.append(found_package)


def _archive(scan: _Scan, found: FoundFile) -> None:
    if found.size > scan.limits.archive_bytes:
        scan.warn(f"{found.path}: larger than {scan.limits.archive_bytes} bytes, not opened")
        return
    fd = open_regular(found.dir_fd, found.name)
    if fd is None:
        return
    try:
        found_packages = java.read_archive(fd, found.path, scan.limits, scan.warn)
        if found_packages:
            scan.digest_fd(found.path, fd, found.size)
            scan.packages.extend(found_packages)
    finally:
        os.close(fd)


def _executable(scan: _Scan, found: FoundFile) -> None:
    fd = open_regular(found.dir_fd, found.name)
    if fd is None:
        return
    try:
        if not golang.is_elf(fd):
            return
        info = golang.read_buildinfo(fd, os.fstat(fd).st_size, scan.limits)
        if info is not None:
            scan.digest_fd(found.path, fd, found.size)
            scan.packages.extend(golang.packages(info, found.path))
    finally:
        os.close(fd)


def _cataloger(found: FoundFile) -> Callable[[_Scan, FoundFile], None] | None:
    path = found.path
    if dpkg.is_status_file(path):
        return _dpkg
    if path in apk.INSTALLED_PATHS:
        return _apk
    if path in rpm.RPMDB_PATHS:
        return _rpm
    if python.is_metadata(path):
        return _python
    if npm.is_package_json(path):
        return _npm
    if java.is_archive(found.name):
        return _archive
    if golang.might_be_executable(found.mode, found.size):
        return _executable
    return None


def _distro(root_fd: int, limits: ScanLimits) -> Distro | None:
    for path in OS_RELEASE_PATHS:
        data = read_beneath(root_fd, path, limits.metadata_bytes)
        if data is not None:
            return parse_os_release(data)
    return None


def scan_rootfs(root: Path, *, limits: ScanLimits | None = None) -> Inventory:
    """The packages installed in the root file system at `root` (a trusted path to an
    untrusted tree). Never follows a link inside the tree, never opens anything but regular
    files, never executes anything; what it cannot read safely it skips with a warning."""
    limits = limits or ScanLimits()
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with tempfile.TemporaryDirectory(prefix="polybuild-sbom-") as scratch:
            scan = _Scan(root_fd, limits, Path(scratch), _distro(root_fd, limits))
            for found in walk(root_fd, max_depth=limits.depth, warn=scan.warn):
                scan.files_seen += 1
                cataloger = _cataloger(found)
                if cataloger is not None:
                    cataloger(scan, found)
    finally:
        os.close(root_fd)
    packages = sorted(scan.packages, key=Package.sort_key)
    wanted = {path for found_package in packages for path in found_package.evidence}
    return Inventory(
        packages=tuple(packages),
        digests=tuple(scan.digests[path] for path in sorted(wanted) if path in scan.digests),
        distro=scan.distro,
        files_seen=scan.files_seen,
        warning_count=scan.warning_count,
        warnings=tuple(scan.warnings),
    )
