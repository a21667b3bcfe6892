"""The real registry fixtures of tests/registry, for imagetools' end-to-end tests."""

from __future__ import annotations

from tests.registry.conftest import docker_config, proxy, registry, store

__all__ = ["docker_config", "proxy", "registry", "store"]
