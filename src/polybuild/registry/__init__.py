"""Registries: an async client (auth, retries, mirrors, verified downloads, resumable uploads),
Docker credentials, BuildKit-style host configuration, and image pull and push.

>>> import asyncio
>>> from polybuild.registry import RegistryClient, pull, push      # doctest: +SKIP
>>> asyncio.run(pull(ImageStore(), "busybox", [parse("linux/arm/v7")]))  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): a module that needs only registry.pull_progress or
# registry.credentials must not pay for the client and httpx (0.2-0.3 s of imports).
_WHERE = {
    "BlobUnknownError": "polybuild.errors",
    "RegistryClient": "polybuild.registry.client",
    "Client": "polybuild.registry.client",
    "HostConfig": "polybuild.registry.config",
    "Mirror": "polybuild.registry.config",
    "RegistryConfig": "polybuild.registry.config",
    "load_config": "polybuild.registry.config",
    "Credentials": "polybuild.registry.credentials",
    "DockerCredentials": "polybuild.registry.credentials",
    "RetryPolicy": "polybuild.registry.retry",
    "BlobSources": "polybuild.registry.sources",
    "PlatformChoice": "polybuild.registry.transfer",
    "Pulled": "polybuild.registry.transfer",
    "PushPlan": "polybuild.registry.transfer",
    "plan_push": "polybuild.registry.transfer",
    "pull": "polybuild.registry.transfer",
    "push": "polybuild.registry.transfer",
    "resolve_base_image": "polybuild.registry.transfer",
    "UploadResult": "polybuild.registry.upload",
}

if TYPE_CHECKING:
    from polybuild.errors import BlobUnknownError
    from polybuild.registry.client import RegistryClient
    from polybuild.registry.client import RegistryClient as Client
    from polybuild.registry.config import HostConfig, Mirror, RegistryConfig, load_config
    from polybuild.registry.credentials import Credentials, DockerCredentials
    from polybuild.registry.retry import RetryPolicy
    from polybuild.registry.sources import BlobSources
    from polybuild.registry.transfer import (
        PlatformChoice,
        Pulled,
        PushPlan,
        plan_push,
        pull,
        push,
        resolve_base_image,
    )
    from polybuild.registry.upload import UploadResult


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), "RegistryClient" if name == "Client" else name)
    globals()[name] = value
    return value


__all__ = [
    "BlobSources",
    "BlobUnknownError",
    "Client",
    "Credentials",
    "DockerCredentials",
    "HostConfig",
    "Mirror",
    "PlatformChoice",
    "Pulled",
    "PushPlan",
    "RegistryClient",
    "RegistryConfig",
    "RetryPolicy",
    "UploadResult",
    "load_config",
    "plan_push",
    "pull",
    "push",
    "resolve_base_image",
]
