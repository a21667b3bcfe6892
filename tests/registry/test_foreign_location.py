"""Credentials go to the registry alone, never to another host its answers point at."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest

import polybuild.registry.http as registry_http
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.reference import parse
from polybuild.registry.client import RegistryClient
from polybuild.registry.credentials import DockerCredentials


def test_upload_location_on_another_host_gets_no_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.host, request.headers.get("authorization")))
        if request.url.host == "reg.example":
            if request.headers.get("authorization") is None:
                return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="r"'})
            if request.url.path == "/v2/":
                return httpx.Response(200)
            if request.method == "HEAD":
                return httpx.Response(404)
            if request.method == "POST":
                location = "https://storage.other.example/upload/xyz?sig=1"
                return httpx.Response(202, headers={"Location": location})
        if request.url.host == "storage.other.example":
            return httpx.Response(201)
        return httpx.Response(500)

    real_client = httpx.AsyncClient

    class MockClient(real_client):  # type: ignore[misc, valid-type]
        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.pop("verify", None)
            kwargs["transport"] = httpx.MockTransport(handler)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(registry_http.httpx, "AsyncClient", MockClient)
    config = {"auths": {"reg.example": {"username": "alice", "password": "s3cret"}}}
    (tmp_path / "config.json").write_text(json.dumps(config))

    async def push() -> None:
        async with RegistryClient(credentials=DockerCredentials(tmp_path)) as client:
            data = b"hello"
            descriptor = Descriptor("application/octet-stream", Digest.of(data), len(data))
            await client.push_blob(parse("reg.example/app:1"), descriptor, lambda: io.BytesIO(data))

    asyncio.run(push())
    registry = [auth for method, host, auth in seen if host == "reg.example" and auth]
    foreign = [(method, auth) for method, host, auth in seen if host == "storage.other.example"]
    assert registry, "the registry itself got the credentials"
    assert foreign == [("PUT", None)]
