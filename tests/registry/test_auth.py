"""Authentication against real registries: basic auth (htpasswd) with credentials from Docker's
config.json or a credential helper, clear 401s, and scope-bound bearer tokens."""

from __future__ import annotations

import asyncio
import base64
import stat
from pathlib import Path

import pytest

from polybuild.errors import AuthenticationError
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import pull, push
from tests.registry.conftest import (
    PASSWORD,
    USER,
    Registry,
    make_client,
    write_docker_config,
)
from tests.registry.proxy import Proxy

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm64")]


def _auths(host: str, user: str = USER, password: str = PASSWORD) -> dict[str, object]:
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"auths": {host: {"auth": encoded}}}


def _round_trip(store: ImageStore, ref: str, config_dir: Path) -> None:
    target = write_index(store.content, PLATFORMS)
    asyncio.run(push(store.content, target, [parse(ref)], client=make_client(config_dir)))
    fresh = ImageStore(store.root.parent / f"fresh-{abs(hash(ref))}")
    pulled = asyncio.run(pull(fresh, ref, "all", client=make_client(config_dir)))
    assert pulled.target.digest == target.digest


def test_basic_auth_from_docker_config_json(
    store: ImageStore, auth_registry: Registry, docker_config: Path
) -> None:
    write_docker_config(docker_config, _auths(f"http://{auth_registry.host}/v1/"))
    _round_trip(store, f"{auth_registry.host}/auth/config:1", docker_config)


def test_basic_auth_from_a_credential_helper(
    store: ImageStore,
    auth_registry: Registry,
    docker_config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-polytest"
    asked = tmp_path / "asked"
    helper.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = get ] || exit 2\nread server\necho "$server" >> {asked}\n'
        f'[ "$server" = "{auth_registry.host}" ] || '
        "{ echo 'credentials not found in native keychain'; exit 1; }\n"
        f'printf \'{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\' "$server"\n'
    )
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path('/usr/bin')}:{Path('/bin')}")
    write_docker_config(docker_config, {"credHelpers": {auth_registry.host: "polytest"}})
    _round_trip(store, f"{auth_registry.host}/auth/helper:1", docker_config)
    # asked once per client (one pushes, one pulls), then cached
    assert asked.read_text().split() == [auth_registry.host] * 2

    write_docker_config(docker_config, {"credsStore": "polytest"})
    _round_trip(store, f"{auth_registry.host}/auth/store:1", docker_config)


def test_wrong_credentials_give_a_clear_401_naming_the_registry(
    store: ImageStore, auth_registry: Registry, docker_config: Path
) -> None:
    write_docker_config(docker_config, _auths(auth_registry.host, password="not-it"))
    target = write_index(store.content, PLATFORMS)
    ref = parse(f"{auth_registry.host}/auth/wrong:1")
    with pytest.raises(AuthenticationError) as failure:
        asyncio.run(push(store.content, target, [ref], client=make_client(docker_config)))
    message = str(failure.value)
    assert auth_registry.host in message and "401" in message
    assert str(docker_config / "config.json") in message
    assert failure.value.hint and auth_registry.host in failure.value.hint


@pytest.mark.root
def test_missing_credentials_say_where_to_put_them(
    store: ImageStore, auth_registry: Registry, docker_config: Path
) -> None:
    with pytest.raises(AuthenticationError, match="requires a user name") as failure:
        asyncio.run(pull(store, f"{auth_registry.host}/auth/none:1", client=make_client()))
    assert failure.value.hint and "config.json" in failure.value.hint


def test_bearer_tokens_are_bound_to_their_repository(
    store: ImageStore, token_proxy: Proxy, docker_config: Path
) -> None:
    write_docker_config(docker_config, _auths(token_proxy.host))
    target = write_index(store.content, PLATFORMS, {"f": b"y" * 100_000})
    client = make_client(docker_config)

    async def scenario() -> None:
        async with client:
            await push(
                store.content, target, [parse(f"{token_proxy.host}/team/a:1")], client=client
            )
            await push(
                store.content, target, [parse(f"{token_proxy.host}/team/b:1")], client=client
            )
            fresh = ImageStore(store.root.parent / "fresh")
            await pull(fresh, f"{token_proxy.host}/team/a:1", "all", client=client)
            await pull(fresh, f"{token_proxy.host}/team/b:1", "all", client=client)

    asyncio.run(scenario())
    auth = token_proxy.auth
    assert auth is not None
    served = [e for e in token_proxy.log if e.repository and e.status != 401]
    assert served
    mounts = [e for e in served if "mount=" in e.path]
    assert mounts and all(e.status == 201 for e in mounts)
    for entry in served:
        assert entry.token_repositories is not None
        assert entry.repository in entry.token_repositories
        if "mount=" not in entry.path:
            # a token for one repository is never sent to another
            assert entry.token_repositories == {entry.repository}, entry
    # tokens were cached per scope: a handful of token requests, not one per request
    assert len(auth.issued) <= 8 < len(served)


def test_token_server_refusing_credentials_is_an_authentication_error(
    store: ImageStore, token_proxy: Proxy, docker_config: Path
) -> None:
    write_docker_config(docker_config, _auths(token_proxy.host, password="nope"))
    with pytest.raises(AuthenticationError, match=r"token server .* refused .*\(401") as failure:
        asyncio.run(pull(store, f"{token_proxy.host}/team/x:1", client=make_client(docker_config)))
    assert token_proxy.host in str(failure.value)
