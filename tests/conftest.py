"""Shared test fixtures: requirements that fail loudly (never skip), busybox root filesystems,
the fuzz budgets of the two hypothesis profiles and the `integration` marker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from polybuild.platforms import Platform, parse

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

# Two hypothesis profiles. "full" is what hypothesis would use here anyway; ./scripts/test
# (what CI runs) selects it with --hypothesis-profile=full, so every property test draws the
# examples it asks for. "quick", the default, draws a tenth: a smoke run of each property
# that keeps `pytest -m "not root and not integration"` fast while editing.
settings.register_profile("full", settings())
settings.register_profile("quick", settings(), max_examples=settings().max_examples // 10)
settings.load_profile("quick")


def fuzz_examples(full: int) -> int:
    """A property test's example budget: `full` in the full profile, scaled in the others."""
    now: int = settings().max_examples
    whole: int = settings.get_profile("full").max_examples
    return max(1, full * now // whole)


# Fixtures that start a real service (a docker-registry process): a test using one, directly
# or through another fixture, is an integration test, whatever else it needs.
SERVICE_FIXTURES = frozenset(
    {"registry", "auth_registry", "world", "buildkitd", "buildkitd_factory"}
)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark `integration` every test that uses a fixture of SERVICE_FIXTURES (before -m)."""
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def require(condition: bool, message: str) -> None:
    """Fail (not skip) with `message` when a system requirement of a test is missing."""
    if not condition:
        pytest.fail(
            f"missing requirement: {message} (scripts/setup installs everything)", pytrace=False
        )


def require_root() -> None:
    require(os.geteuid() == 0, "this test needs root (chroot, mounts, binfmt_misc)")


def require_tool(name: str) -> str:
    path = shutil.which(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def require_platforms(*specs: str) -> tuple[Platform, ...]:
    """Fail unless every platform can run here (natively or with an F-flag QEMU handler)."""
    from polybuild.binfmt.probe import runnable_platforms

    wanted = tuple(parse(s) for s in specs)
    runnable = runnable_platforms()
    missing = [str(p) for p in wanted if p not in runnable]
    require(not missing, f"cannot run {', '.join(missing)}: run `polybuild binfmt --install all`")
    return wanted


@pytest.fixture
def polybuild_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty POLYBUILD_ROOT for one test."""
    root = tmp_path / "polybuild-root"
    monkeypatch.setenv("POLYBUILD_ROOT", str(root))
    yield root


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory: pytest.TempPathFactory) -> object:
    """A factory: busybox_rootfs("arm64") -> Path of a busybox root filesystem (cached)."""
    from polybuild.testing.busybox import make_rootfs

    base = tmp_path_factory.mktemp("busybox")
    made: dict[str, Path] = {}

    def factory(debian_arch: str) -> Path:
        if debian_arch not in made:
            made[debian_arch] = make_rootfs(debian_arch, base / debian_arch)
        return made[debian_arch]

    return factory


BUSYBOX_PLATFORMS = {
    "amd64": "linux/amd64",
    "arm64": "linux/arm64",
    "armhf": "linux/arm/v7",
    "armel": "linux/arm/v6",
    "ppc64el": "linux/ppc64le",
    "s390x": "linux/s390x",
}


def import_busybox(
    root: Path, arches: tuple[str, ...] = ("amd64", "arm64", "armhf"), name: str = "busybox"
) -> None:
    """Import busybox root filesystems for `arches` as one multi-platform image in `root`."""
    import tempfile

    from polybuild.image import ImageStore
    from polybuild.importer import import_rootfs
    from polybuild.platforms import parse as parse_platform
    from polybuild.testing.busybox import make_rootfs_tar

    store = ImageStore(root)
    with tempfile.TemporaryDirectory() as tmp:
        for arch in arches:
            tarball = make_rootfs_tar(arch, Path(tmp) / f"{arch}.tar")
            with open(tarball, "rb") as f:
                import_rootfs(store, f, name, parse_platform(BUSYBOX_PLATFORMS[arch]))


def run_cli(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | bytes | None = None,
    text: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess[Any]:
    """`polybuild ARGS` as a user runs it, with POLYBUILD_ROOT=root (a fresh process each time)."""
    full = {**os.environ, "POLYBUILD_ROOT": str(root), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "polybuild", *args],
        capture_output=True,
        text=text,
        env=full,
        input=stdin,
        timeout=timeout,
        check=False,
    )
