"""Registries: an async client (auth, retries, mirrors, verified downloads, resumable uploads),
Docker credentials, BuildKit-style host configuration, and image pull and push.

>>> import asyncio
>>> from polybuild.registry import RegistryClient, pull, push      # doctest: +SKIP
>>> asyncio.run(pull(ImageStore(), "busybox", [parse("linux/arm/v7")]))  # doctest: +SKIP
"""

from __future__ import annotations

from polybuild.errors import BlobUnknownError
from polybuild.registry.client import RegistryClient
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

Client = RegistryClient

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
