"""Credentials go to the registry alone, never to another host its answers point at."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.reference import parse
from polybuild.registry.client import RegistryClient
from polybuild.registry.credentials import DockerCredentials
from polybuild.testing.registry import FakeRegistry


def test_upload_location_on_another_host_gets_no_credentials(tmp_path: Path) -> None:
    registry = FakeRegistry(
        "reg.example",
        auth="basic",
        users={"alice": "s3cret"},
        upload_host="storage.other.example",
    )
    config = {"auths": {"reg.example": {"username": "alice", "password": "s3cret"}}}
    (tmp_path / "config.json").write_text(json.dumps(config))
    data = b"hello"
    descriptor = Descriptor("application/octet-stream", Digest.of(data), len(data))

    async def push() -> None:
        credentials = DockerCredentials(tmp_path)
        async with RegistryClient(credentials=credentials, transport=registry) as client:
            await client.push_blob(parse("reg.example/app:1"), descriptor, lambda: io.BytesIO(data))

    asyncio.run(push())
    seen = registry.requests
    to_registry = [s.authorization for s in seen if s.host == "reg.example" and s.authorization]
    foreign = [(s.method, s.authorization) for s in seen if s.host == "storage.other.example"]
    assert to_registry, "the registry itself got the credentials"
    assert foreign == [("PUT", None)]
    assert registry.blob("app", str(descriptor.digest)) == data
