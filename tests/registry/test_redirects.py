"""Registry credentials stay with the registry: a redirect target's 401 is an error (never the
registry's new challenge), token realms speak HTTPS (plain HTTP on loopback only), redirects
are few and lead to http(s) only. Real servers on 127.0.0.1 play registry, storage and thief."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from polybuild.errors import AuthenticationError, RegistryError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.reference import parse
from polybuild.registry.origin import redirect_target, token_realm
from tests.registry.conftest import PASSWORD, USER, Registry, make_client, write_docker_config
from tests.registry.hostile import Answer, HostileServer, Seen
from tests.registry.proxy import Proxy

DATA = b"the layer's bytes\n" * 100
DESCRIPTOR = Descriptor(mt.OCI_LAYER, Digest.of(DATA), len(DATA))
SECRET = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


def _auths(host: str) -> dict[str, object]:
    return {"auths": {host: {"auth": SECRET}}}


@pytest.fixture
def auth_proxy(auth_registry: Registry) -> Iterator[Proxy]:
    """The basic-auth registry behind a proxy that can answer with redirects."""
    with Proxy(auth_registry.host) as running:
        yield running


def _fetch(op: str, ref: str, docker_config: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with make_client(docker_config) as client:
            if op == "blob":
                await client.fetch_blob(parse(ref), DESCRIPTOR, ContentStore(tmp_path / "cs"))
            else:
                assert await client.fetch_bytes(parse(ref), DESCRIPTOR) == DATA

    asyncio.run(scenario())


def _no_credentials(requests: list[Seen]) -> None:
    assert requests, "the redirect was not followed at all"
    for seen in requests:
        assert seen.authorization is None, seen
        assert SECRET not in str(seen.headers), seen


@pytest.mark.parametrize("op", ["blob", "config"])
def test_a_401_from_a_redirect_target_is_an_error_not_a_new_challenge(
    op: str, auth_proxy: Proxy, docker_config: Path, tmp_path: Path
) -> None:
    """The attack: storage answers 401 naming its own token server, which would get the
    registry's basic credentials over plain HTTP if the 401 were taken as a challenge."""

    def thief(seen: Seen) -> Answer:
        if seen.path.startswith("/token"):
            return Answer(200, (("Content-Type", "application/json"),), b'{"token": "stolen"}')
        challenge = f'Bearer realm="http://{evil.host}/token",service="evil"'
        return Answer(401, (("WWW-Authenticate", challenge),), b'{"errors": []}')

    with HostileServer(thief) as evil:
        write_docker_config(docker_config, _auths(auth_proxy.host))
        location = f"http://{evil.host}/storage/blob?X-Signature=secret-sig"
        auth_proxy.fault(
            "GET", r"/blobs/sha256:", "status", status=307, times=99, headers={"Location": location}
        )
        with pytest.raises(RegistryError) as failure:
            _fetch(op, f"{auth_proxy.host}/redirect/app:1", docker_config, tmp_path)
        _no_credentials(evil.requests())
        assert not [s for s in evil.requests() if s.path.startswith("/token")]

    message = str(failure.value)
    assert not isinstance(failure.value, AuthenticationError)
    assert f"http://{evil.host}" in message and "401" in message, message
    assert auth_proxy.host in message and "redirect/app" in message
    assert "secret-sig" not in message  # signed URLs are not printed


def test_a_redirect_to_storage_downloads_without_credentials(
    auth_proxy: Proxy, docker_config: Path, tmp_path: Path
) -> None:
    with HostileServer(lambda seen: Answer(200, body=DATA)) as storage:
        write_docker_config(docker_config, _auths(auth_proxy.host))
        location = f"http://{storage.host}/storage/blob?sig=1"
        auth_proxy.fault(
            "GET", r"/blobs/sha256:", "status", status=302, times=99, headers={"Location": location}
        )
        _fetch("blob", f"{auth_proxy.host}/redirect/ok:1", docker_config, tmp_path)
        _fetch("config", f"{auth_proxy.host}/redirect/ok:1", docker_config, tmp_path)
        _no_credentials(storage.requests())
    assert ContentStore(tmp_path / "cs").get(DESCRIPTOR.digest) == DATA


def test_redirects_are_few_and_only_to_http_or_https(
    auth_proxy: Proxy, docker_config: Path, tmp_path: Path
) -> None:
    def loop(seen: Seen) -> Answer:
        return Answer(302, (("Location", f"/again{len(hostile.requests())}"),))

    write_docker_config(docker_config, _auths(auth_proxy.host))
    with HostileServer(loop) as hostile:
        location = f"http://{hostile.host}/start"
        auth_proxy.fault(
            "GET", r"/blobs/sha256:", "status", status=302, times=99, headers={"Location": location}
        )
        with pytest.raises(RegistryError, match=r"more than 10 redirects"):
            _fetch("blob", f"{auth_proxy.host}/redirect/loop:1", docker_config, tmp_path)
        assert len(hostile.requests()) == 10  # ten redirects followed (the first from the proxy)
        _no_credentials(hostile.requests())

    auth_proxy.reset()
    auth_proxy.fault(
        "GET",
        r"/blobs/sha256:",
        "status",
        status=301,
        times=99,
        headers={"Location": "file:///etc/passwd"},
    )
    with pytest.raises(RegistryError, match=r"redirected to a file: URL; only http and https"):
        _fetch("config", f"{auth_proxy.host}/redirect/file:1", docker_config, tmp_path)
    assert auth_proxy.count("GET", r"/blobs/") == 1  # refused at once, not retried


def test_token_realm_over_plain_http_to_another_host_gets_no_credentials(
    docker_config: Path,
) -> None:
    """0.0.0.0 reaches this machine but is not a loopback address: it stands for any host."""

    def respond(seen: Seen) -> Answer:
        if seen.server == 1:
            return Answer(200, (("Content-Type", "application/json"),), b'{"token": "t"}')
        port = hostile.hosts[1].rsplit(":", 1)[1]
        challenge = f'Bearer realm="http://0.0.0.0:{port}/token",service="registry"'
        return Answer(401, (("WWW-Authenticate", challenge),), b"")

    with HostileServer(respond, servers=2) as hostile:
        write_docker_config(docker_config, _auths(hostile.host))
        client = make_client(docker_config)

        async def resolve() -> None:
            async with client:
                await client.resolve(parse(f"{hostile.host}/realm/app:1"))

        with pytest.raises(AuthenticationError) as failure:
            asyncio.run(resolve())
        assert hostile.requests(server=1) == []
    message = str(failure.value)
    assert "http://0.0.0.0:" in message and "/token" in message and hostile.host in message
    assert failure.value.hint and "HTTPS" in failure.value.hint


@pytest.mark.parametrize(
    "realm",
    [
        "https://auth.example.com/token",
        "http://127.0.0.1:5000/token",
        "http://127.9.9.9/token",
        "http://localhost:8080/token",
        "http://[::1]:8080/token",
    ],
)
def test_token_realms_accepted(realm: str) -> None:
    assert str(token_realm("reg.example", realm)) == realm


@pytest.mark.parametrize(
    "realm",
    [
        "http://auth.example.com/token",
        "http://10.0.0.1/token",
        "http://0.0.0.0/token",
        "http://localhost.evil.example/token",
    ],
)
def test_plain_http_realms_elsewhere_are_refused(realm: str) -> None:
    with pytest.raises(AuthenticationError, match=r"registry reg\.example names the token server"):
        token_realm("reg.example", realm)


@pytest.mark.parametrize("realm", ["", "token", "ftp://127.0.0.1/token", "http://[::1/x"])
def test_invalid_realms_are_refused(realm: str) -> None:
    with pytest.raises(RegistryError, match=r"without a valid realm"):
        token_realm("reg.example", realm)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/v2/x/blobs/y", "https://reg.example/v2/x/blobs/y"),
        ("//cdn.example/blob?sig=1", "https://cdn.example/blob?sig=1"),
        ("http://127.0.0.1:9/b", "http://127.0.0.1:9/b"),
    ],
)
def test_redirect_targets(location: str, expected: str) -> None:
    request = httpx.Request("GET", "https://reg.example/v2/x/blobs/sha256:0")
    response = httpx.Response(307, headers={"Location": location}, request=request)
    assert str(redirect_target(response, 1, "registry reg.example")) == expected


@pytest.mark.parametrize("location", ["", "javascript:alert(1)", "ftp://x/y", "http://[::1"])
def test_bad_redirect_targets_are_refused(location: str) -> None:
    request = httpx.Request("GET", "https://reg.example/v2/x/blobs/sha256:0")
    response = httpx.Response(307, headers={"Location": location}, request=request)
    with pytest.raises(RegistryError, match=r"only http and https redirects are followed"):
        redirect_target(response, 1, "registry reg.example")
