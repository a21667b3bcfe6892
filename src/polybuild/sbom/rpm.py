"""rpm's sqlite database (rpmdb.sqlite): every header blob of its Packages table as a package.

The file comes from the image, so sqlite never sees it where it lies: the caller copies it
(and its write-ahead log, when rpm left one) into a private directory (bounded), where it is
opened read-only, immutable when there is no log, with untrusted schema objects refused, the
statement's work bounded by a progress handler and the rows counted."""

from __future__ import annotations

import sqlite3
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from packageurl import PackageURL

from polybuild.sbom.package import Distro, Package
from polybuild.sbom.rpmheader import HeaderFormatError, RpmHeader, parse_header

RPMDB_PATHS = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
_STEPS = 1_000  # the progress handler runs every this many virtual machine instructions
_MAX_STEPS = 50_000_000  # about a second; a real rpmdb needs a few thousand


def read_rpmdb(
    copy: Path,
    evidence: str,
    distro: Distro | None,
    *,
    with_wal: bool,
    max_packages: int,
    max_header_bytes: int,
    warn: Callable[[str], None],
) -> list[Package]:
    """The packages of a private copy of an rpmdb.sqlite; `with_wal` when a copy of its
    write-ahead log lies beside it (then sqlite reads the log and keeps its index, -shm, in
    the private directory; without one the copy is opened immutable)."""
    mode = "mode=ro" if with_wal else "mode=ro&immutable=1"
    uri = f"file:{urllib.parse.quote(str(copy))}?{mode}"
    found: list[Package] = []
    steps = 0

    def progress() -> int:
        nonlocal steps
        steps += _STEPS
        return 1 if steps > _MAX_STEPS else 0

    try:
        connection = sqlite3.connect(uri, uri=True, check_same_thread=True)
    except sqlite3.Error as error:
        warn(f"{evidence}: {error}")
        return found
    try:
        connection.execute("PRAGMA trusted_schema=OFF")
        connection.execute("PRAGMA query_only=ON")
        connection.set_progress_handler(progress, _STEPS)
        cursor = connection.execute("SELECT blob FROM Packages")
        for (blob,) in cursor:
            if len(found) >= max_packages:
                warn(f"{evidence}: more than {max_packages} packages; the rest not read")
                break
            if not isinstance(blob, bytes) or len(blob) > max_header_bytes:
                warn(f"{evidence}: a header that is not a blob or too large, skipped")
                continue
            try:
                header = parse_header(blob)
            except HeaderFormatError as error:
                warn(f"{evidence}: {error}")
                continue
            if header.name and header.version and header.name != "gpg-pubkey":
                found.append(package(header, distro, evidence))
    except sqlite3.Error as error:
        warn(f"{evidence}: {error}")
    finally:
        connection.close()
    return found


def purl(header: RpmHeader, distro: Distro | None) -> str:
    """pkg:rpm/<ID>/<name>@<version>-<release>?arch=..&distro=..&epoch=..&upstream=<srpm>."""
    qualifiers = {"arch": header.arch} if header.arch else {}
    if header.epoch is not None:
        qualifiers["epoch"] = str(header.epoch)
    if header.source_rpm:
        qualifiers["upstream"] = header.source_rpm
    if distro is not None:
        qualifiers["distro"] = distro.qualifier
    return PackageURL(
        type="rpm",
        namespace=distro.id if distro is not None else None,
        name=header.name,
        version=f"{header.version}-{header.release}" if header.release else header.version,
        qualifiers=qualifiers,
    ).to_string()


def package(header: RpmHeader, distro: Distro | None, evidence: str) -> Package:
    version = f"{header.version}-{header.release}" if header.release else header.version
    if header.epoch is not None:
        version = f"{header.epoch}:{version}"
    return Package(
        kind="rpm",
        name=header.name,
        version=version,
        purl=purl(header, distro),
        license=header.license,
        evidence=(evidence,),
        files=header.files,
    )
