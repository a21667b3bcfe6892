"""The world the reliability tests kill commands in: base images, contexts and a registry."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import require_platforms, require_root, require_tool
from tests.registry.conftest import run_registry
from tests.reliability.scenarios import PLATFORMS, World, make_world

# The kill moments are random but repeatable: set POLYBUILD_RELIABILITY_SEED to vary them.
SEED = os.environ.get("POLYBUILD_RELIABILITY_SEED", "polybuild")


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    require_root()
    require_tool("runc")
    require_platforms(*PLATFORMS.split(","))
    base = tmp_path_factory.mktemp("reliability")
    with run_registry(base / "registry") as registry:
        yield make_world(base / "world", registry.host)
