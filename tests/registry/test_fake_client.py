"""The registry client against the in-memory registry (polybuild.testing.registry): pulls of
multi-platform indexes, pushes with cross-repository mounts, the bearer-token challenge and
retries after injected faults, as any user, with no network and no registry process."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest

from polybuild.errors import AuthenticationError, RegistryError
from polybuild.image import mediatypes as mt
from polybuild.image.manifest import parse_index
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import pull, push
from polybuild.registry.client import RegistryClient
from polybuild.testing.registry import FakeRegistry, Fault
from tests.registry.conftest import make_client, write_docker_config

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")
HOST = "registry.test"
USERS = {"alice": "wonderland"}


def _store(tmp_path: Path, name: str = "store") -> ImageStore:
    return ImageStore(tmp_path / name)


def _client(
    registry: FakeRegistry, config_dir: Path | None = None, **options: int
) -> RegistryClient:
    return make_client(config_dir, transport=registry, **options)  # type: ignore[arg-type]


def _login(directory: Path) -> Path:
    directory.mkdir()
    secret = base64.b64encode(b"alice:wonderland").decode()
    write_docker_config(directory, {"auths": {HOST: {"auth": secret}}})
    return directory


def test_push_then_pull_one_platform_of_a_multi_platform_index(tmp_path: Path) -> None:
    registry = FakeRegistry(HOST)
    store = _store(tmp_path)
    target = write_index(store.content, [AMD, ARM])
    ref = parse(f"{HOST}/team/app:1")
    pushed = asyncio.run(push(store.content, target, [ref], client=_client(registry)))
    assert pushed.digest == target.digest
    assert registry.manifest("team/app", "1") == (mt.OCI_INDEX, store.content.get(target.digest))

    fresh = _store(tmp_path, "fresh")
    registry.requests.clear()
    pulled = asyncio.run(pull(fresh, ref, [ARM], client=_client(registry)))
    assert pulled.target.digest == target.digest
    assert [m.platform for m in pulled.manifests] == [ARM]
    assert [r.name for r in fresh.records()] == [ref]
    # one manifest's config and layer, nothing of the amd64 variant
    assert registry.count("GET", "/blobs/") == 2
    amd = parse_index(store.content.get(target.digest)).value.manifests[0]
    assert amd.platform == AMD and not fresh.content.exists(amd.digest)


def test_pull_without_a_client_uses_the_transport(tmp_path: Path) -> None:
    registry = FakeRegistry(HOST)
    store = _store(tmp_path)
    target = write_index(store.content, [AMD, ARM])
    ref = parse(f"{HOST}/team/app:1")
    asyncio.run(push(store.content, target, [ref], transport=registry))
    pulled = asyncio.run(pull(_store(tmp_path, "fresh"), ref, "all", transport=registry))
    assert [m.platform for m in pulled.manifests] == [AMD, ARM]


def test_second_repository_mounts_with_a_token_scoped_to_the_source(tmp_path: Path) -> None:
    registry = FakeRegistry(HOST, auth="bearer", users=USERS)
    config = _login(tmp_path / "docker")
    store = _store(tmp_path)
    target = write_index(store.content, [AMD, ARM])
    first, second = parse(f"{HOST}/team/app:1"), parse(f"{HOST}/team/copy:1")
    asyncio.run(push(store.content, target, [first], client=_client(registry, config)))
    assert registry.count("PUT", "/blobs/uploads/") == 4  # two configs, two layers

    registry.requests.clear()
    log: list[str] = []
    asyncio.run(
        push(store.content, target, [second], client=_client(registry, config), log=log.append)
    )
    assert [line.split(": ")[1] for line in log[:-1]] == ["mounted"] * 4
    assert registry.count("PATCH") == 0 and registry.count("PUT", "/blobs/uploads/") == 0
    token_queries = [s.query for s in registry.requests if s.path == "/token"]
    assert any("repository%3Ateam%2Fapp%3Apull" in q for q in token_queries), token_queries
    assert registry.manifest("team/copy", "1") == registry.manifest("team/app", "1")


def test_bearer_challenge_then_token_then_the_request(tmp_path: Path) -> None:
    registry = FakeRegistry(HOST, auth="bearer", users=USERS)
    store = _store(tmp_path)
    target = write_index(store.content, [AMD])
    ref = parse(f"{HOST}/team/app:1")
    config = _login(tmp_path / "docker")
    asyncio.run(push(store.content, target, [ref], client=_client(registry, config)))
    registry.requests.clear()

    asyncio.run(pull(_store(tmp_path, "fresh"), ref, [AMD], client=_client(registry, config)))
    first = registry.requests[:3]
    assert [(s.method, s.path) for s in first] == [
        ("GET", "/v2/"),
        ("GET", "/token"),
        ("GET", "/v2/team/app/manifests/1"),
    ]
    assert first[0].authorization is None
    assert (first[1].authorization or "").startswith("Basic ")
    for seen in registry.requests:
        # the password goes to the token server only; the registry sees tokens
        if seen.path != "/token" and seen.authorization is not None:
            assert seen.authorization.startswith("Bearer "), seen

    with pytest.raises(AuthenticationError, match="token server .* refused anonymous access"):
        asyncio.run(pull(_store(tmp_path, "anonymous"), ref, [AMD], client=_client(registry)))
    open_pulls = FakeRegistry(HOST, auth="bearer", users=USERS, anonymous_pull=True)
    with pytest.raises(AuthenticationError, match="refused anonymous access"):
        asyncio.run(push(store.content, target, [ref], client=_client(open_pulls)))


def test_basic_auth_refuses_a_wrong_password(tmp_path: Path) -> None:
    registry = FakeRegistry(HOST, auth="basic", users={"alice": "other"})
    config = _login(tmp_path / "docker")
    with pytest.raises(AuthenticationError, match=f"registry {HOST}.*refused the credentials"):
        asyncio.run(pull(_store(tmp_path), f"{HOST}/team/app:1", client=_client(registry, config)))


def test_injected_faults_are_retried_and_chunked_uploads_resume(tmp_path: Path) -> None:
    registry = FakeRegistry(HOST)
    store = _store(tmp_path)
    target = write_index(store.content, [AMD], {"data": b"x" * 300_000})
    ref = parse(f"{HOST}/team/big:1")
    registry.inject(Fault(503, "PUT", "/manifests/", headers=(("Retry-After", "0"),)))
    registry.inject(Fault(method="PATCH", times=1, disconnect=True))
    asyncio.run(push(store.content, target, [ref], client=_client(registry, chunk_size=100_000)))
    assert registry.count("PATCH") > 3  # the dropped chunk was sent again
    assert registry.count("GET", "/blobs/uploads/") == 1  # after asking where to go on
    assert registry.manifest("team/big", "1") is not None

    registry.inject(Fault(500, "GET", "/blobs/", times=0))
    with pytest.raises(RegistryError, match="500"):
        asyncio.run(pull(_store(tmp_path, "fresh"), ref, [AMD], client=_client(registry)))


def test_tags_are_listed_across_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from polybuild.registry import client as client_module

    monkeypatch.setattr(client_module, "TAGS_PAGE", 2)
    registry = FakeRegistry(HOST)
    for tag in ("a", "b", "c", "d", "e"):
        registry.add_manifest("team/app", b"{}", mt.OCI_MANIFEST, tag)

    async def tags() -> list[str]:
        async with _client(registry) as client:
            return await client.list_tags(parse(f"{HOST}/team/app"))

    assert asyncio.run(tags()) == ["a", "b", "c", "d", "e"]
    assert registry.count("GET", "/tags/list") == 3
