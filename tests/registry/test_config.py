"""Registry configuration (BuildKit's `[registry."host"]` TOML), mirrors with fallback, plain
HTTP rules, and Docker config.json lookups."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest

from polybuild.errors import UsageError
from polybuild.image.reference import parse
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_index
from polybuild.platforms import Platform
from polybuild.registry import RegistryClient, pull, push
from polybuild.registry.config import HostConfig, Mirror, load_config
from polybuild.registry.credentials import DOCKER_HUB_KEY, DockerCredentials
from polybuild.registry.origin import is_loopback
from tests.registry.conftest import Registry, make_client
from tests.registry.proxy import Proxy

PLATFORMS = [Platform("linux", "amd64"), Platform("linux", "arm", "v7")]


def test_toml_file_in_buildkits_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "polybuild.toml"
    path.write_text(
        '[worker.oci]\nenabled = true\n\n[registry."docker.io"]\n'
        'mirrors = ["127.0.0.1:5000", "https://mirror.example.com/proxy.docker.io/"]\n\n'
        '[registry."internal:5000"]\nhttp = true\ninsecure = true\nca = ["ca.pem"]\n'
        '[[registry."internal:5000".keypair]]\nkey = "k.pem"\ncert = "c.pem"\n'
    )
    monkeypatch.setenv("POLYBUILD_CONFIG", str(path))
    config = load_config()
    assert config.source == path
    hub = config.host("docker.io")
    assert hub.mirrors == (
        Mirror("127.0.0.1:5000"),
        Mirror("mirror.example.com", "proxy.docker.io"),
    )
    assert config.host("index.docker.io") == hub
    internal = config.host("internal:5000")
    assert internal.http and internal.insecure and internal.ca == (tmp_path / "ca.pem",)
    assert internal.keypairs[0].cert == tmp_path / "c.pem"
    assert config.host("elsewhere.io") == HostConfig()
    assert RegistryClient().config == config  # the client reads the same file by default


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[registry."a.io"]\nmirorrs = ["x"]\n', "unknown key"),
        ('[registry."a.io"]\nhttp = "yes"\n', "true or false"),
        ('[registry."a.io"]\nmirrors = ["not a host"]\n', "invalid mirror"),
        ("[registry\n", "not valid TOML"),
    ],
)
def test_bad_configuration_is_a_usage_error(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=error):
        load_config(path)
    with pytest.raises(UsageError, match="does not exist"):
        load_config(tmp_path / "missing.toml")


def test_plain_http_only_for_loopback_or_configured_hosts() -> None:
    assert is_loopback("localhost:5000") and is_loopback("127.3.4.5:80") and is_loopback("[::1]:5")
    assert not is_loopback("registry.example.com") and not is_loopback("10.0.0.1:5000")
    client = make_client(hosts={"plain.example:80": HostConfig(http=True)})
    connections = client.connections
    assert connections.schemes("registry.example.com") == ("https",)
    assert connections.schemes("127.0.0.1:5000") == ("https", "http")
    assert connections.schemes("plain.example:80") == ("http",)


def test_docker_hub_pulls_go_to_the_mirror(store: ImageStore, proxy: Proxy) -> None:
    target = write_index(store.content, PLATFORMS)
    asyncio.run(
        push(
            store.content,
            target,
            [parse(f"{proxy.host}/library/busybox:latest")],
            client=make_client(),
        )
    )
    proxy.reset()
    client = make_client(hosts={"docker.io": HostConfig(mirrors=(Mirror(proxy.host),))})
    fresh = ImageStore(store.root.parent / "fresh")
    pulled = asyncio.run(pull(fresh, "busybox", [Platform("linux", "arm", "v7")], client=client))
    assert pulled.target.digest == target.digest
    assert [str(r.name) for r in fresh.records()] == ["docker.io/library/busybox:latest"]
    assert proxy.count("GET", r"/v2/library/busybox/manifests/latest") == 1


def test_mirror_lacking_the_image_falls_back_to_the_origin(
    store: ImageStore, registry: Registry, proxy: Proxy
) -> None:
    target = write_index(store.content, PLATFORMS)
    ref = parse(f"{registry.host}/mirrored/app:1")
    asyncio.run(push(store.content, target, [ref], client=make_client()))
    mirror = Mirror(proxy.host, "empty-prefix")
    client = make_client(hosts={registry.host: HostConfig(mirrors=(mirror,))})
    fresh = ImageStore(store.root.parent / "fresh")
    pulled = asyncio.run(pull(fresh, ref, "all", client=client))
    assert pulled.target.digest == target.digest
    misses = [e for e in proxy.log if e.path.startswith("/v2/empty-prefix/mirrored/app/")]
    assert misses and all(e.status == 404 for e in misses)


def test_docker_config_lookups(tmp_path: Path) -> None:
    hub = base64.b64encode(b"hubuser:hubpass").decode()
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "auths": {
                    DOCKER_HUB_KEY: {"auth": hub},
                    "https://ghcr.io": {"username": "u", "password": "p"},
                    "quay.io": {"identitytoken": "refresh-me"},
                }
            }
        )
    )
    credentials = DockerCredentials(tmp_path)
    found = credentials.get("registry-1.docker.io")
    assert found is not None and (found.username, found.password) == ("hubuser", "hubpass")
    assert credentials.get("docker.io") == found
    ghcr = credentials.get("ghcr.io")
    assert ghcr is not None and ghcr.username == "u"
    quay = credentials.get("quay.io")
    assert quay is not None and quay.identity_token == "refresh-me"
    assert credentials.get("elsewhere.io") is None
    assert "hubpass" not in repr(found)
