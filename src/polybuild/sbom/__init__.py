"""polybuild's own SBOM scanner: the packages of a root file system (dpkg, apk, rpm, Python,
npm, Go binaries, Java archives) and an SPDX 2.3 JSON document of them.

    inventory = scan_rootfs(Path("/path/to/rootfs"))
    document = spdx_document(inventory, name="docker.io/library/app", created=build_time)
"""

from __future__ import annotations

from polybuild.sbom.package import Distro, FileDigest, Inventory, Package, ScanLimits
from polybuild.sbom.scan import scan_rootfs
from polybuild.sbom.spdx import spdx_document

__all__ = [
    "Distro",
    "FileDigest",
    "Inventory",
    "Package",
    "ScanLimits",
    "scan_rootfs",
    "spdx_document",
]
