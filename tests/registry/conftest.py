"""Real registries for the tests: Debian's docker-registry (distribution) on free loopback ports,
one open and one with htpasswd basic auth, plus proxies (faults, bearer tokens) in front."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from polybuild.image.store import ImageStore
from polybuild.registry import RegistryClient, RetryPolicy
from polybuild.registry.config import RegistryConfig
from polybuild.registry.credentials import DockerCredentials
from tests.conftest import require_tool
from tests.registry.proxy import Proxy, TokenAuth

USER, PASSWORD = "alice", "wonderland"
# Quick retries: the tests inject failures and should not wait like a real client would.
FAST_RETRY = RetryPolicy(attempts=5, initial_wait=0.05, max_wait=0.5)


@dataclass(frozen=True)
class Registry:
    host: str
    storage: Path
    log: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _htpasswd(path: Path) -> None:
    """A bcrypt htpasswd file (the only hash distribution accepts)."""
    import bcrypt

    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    path.write_text(f"{USER}:{hashed}\n")


@contextlib.contextmanager
def run_registry(base: Path, *, htpasswd: bool = False) -> Iterator[Registry]:
    """docker-registry serving from `base`, until the block ends."""
    binary = require_tool("docker-registry")
    base.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    auth = ""
    if htpasswd:
        _htpasswd(base / "htpasswd")
        auth = f"auth:\n  htpasswd:\n    realm: polybuild-test\n    path: {base / 'htpasswd'}\n"
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'storage'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: polybuild-test-secret\n" + auth
    )
    log = base / "registry.log"
    with log.open("wb") as out:
        process = subprocess.Popen([binary, "serve", str(config)], stdout=out, stderr=out)
    registry = Registry(f"127.0.0.1:{port}", base / "storage", log)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"docker-registry exited: {log.read_text()[-2000:]}", pytrace=False)
            try:
                urllib.request.urlopen(f"http://{registry.host}/v2/", timeout=2)
                break
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("docker-registry did not answer /v2/ in 30 s", pytrace=False)
            time.sleep(0.05)
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """An open registry shared by the session (tests use their own repositories)."""
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """A registry that wants basic auth (htpasswd) for alice/wonderland."""
    with run_registry(tmp_path_factory.mktemp("auth-registry"), htpasswd=True) as running:
        yield running


@pytest.fixture
def proxy(registry: Registry) -> Iterator[Proxy]:
    """A logging, fault-injecting proxy in front of the open registry, for one test."""
    with Proxy(registry.host) as running:
        yield running


@pytest.fixture
def token_proxy(registry: Registry) -> Iterator[Proxy]:
    """The open registry behind bearer-token auth with our own token server."""
    with Proxy(registry.host, auth=TokenAuth({USER: PASSWORD})) as running:
        yield running


@pytest.fixture
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty $DOCKER_CONFIG directory (tests write config.json into it)."""
    directory = tmp_path / "docker-config"
    directory.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def write_docker_config(directory: Path, document: dict[str, object]) -> None:
    (directory / "config.json").write_text(json.dumps(document))


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


def make_client(
    docker_config_dir: Path | None = None,
    *,
    chunk_size: int = 1 << 20,
    retry: RetryPolicy = FAST_RETRY,
    transport: httpx.AsyncBaseTransport | None = None,
    **config: object,
) -> RegistryClient:
    """A client with quick retries, small chunks and the given Docker config directory, over
    the network or `transport` (a polybuild.testing.registry.FakeRegistry)."""
    # Without a directory, one that does not exist: the user's own config must not leak in.
    credentials = DockerCredentials(docker_config_dir or Path("/nonexistent/docker-config"))
    return RegistryClient(
        RegistryConfig(**config),  # type: ignore[arg-type]
        credentials,
        retry=retry,
        chunk_size=chunk_size,
        transport=transport,
    )
