"""The scanned roots, built once per module: building the Go binary takes seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.sbom import Inventory, scan_rootfs
from tests.sbom import roots


@pytest.fixture(scope="module")
def debian(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    work = tmp_path_factory.mktemp("work")
    return scan_rootfs(roots.debian_root(tmp_path_factory.mktemp("debian"), work))


@pytest.fixture(scope="module")
def alpine(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    return scan_rootfs(roots.alpine_root(tmp_path_factory.mktemp("alpine")))


@pytest.fixture(scope="module")
def fedora(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    work = tmp_path_factory.mktemp("work")
    return scan_rootfs(roots.fedora_root(tmp_path_factory.mktemp("fedora"), work))


def by_purl(
    inventory: Inventory,
) -> dict[str, tuple[str, str, str, tuple[str, ...], tuple[str, ...]]]:
    """purl -> (name, version, license, evidence, files) of every package."""
    return {p.purl: (p.name, p.version, p.license, p.evidence, p.files) for p in inventory.packages}


__all__ = ["Path", "by_purl"]
