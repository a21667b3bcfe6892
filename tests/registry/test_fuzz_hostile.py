"""Fuzzing the registry client against a hostile loopback registry: hypothesis draws what the
server answers (statuses, WWW-Authenticate, Location, Content-Length, Docker-Content-Digest,
Content-Type, truncated or huge or nested bodies); every operation either returns verified
content or raises a PolybuildError, in bounded time, and credentials never leave the registry."""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polybuild.errors import PolybuildError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Manifest, encode_manifest
from polybuild.image.reference import parse
from polybuild.registry import RegistryClient, RetryPolicy
from polybuild.registry.config import HostConfig, RegistryConfig
from polybuild.registry.credentials import DockerCredentials
from tests.conftest import fuzz_examples
from tests.registry.hostile import Answer, HostileServer, Seen

LAYER = b"hostile layer bytes\n" * 300
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
LAYER_DESC = Descriptor(mt.OCI_LAYER, Digest.of(LAYER), len(LAYER))
CONFIG_DESC = Descriptor(mt.OCI_CONFIG, Digest.of(CONFIG), len(CONFIG))
MANIFEST = encode_manifest(Manifest(config=CONFIG_DESC, layers=(LAYER_DESC,)))
BLOBS = {str(LAYER_DESC.digest): LAYER, str(CONFIG_DESC.digest): CONFIG}
TOKEN = b'{"token": "fuzz-token", "expires_in": 300}'
API = ("Docker-Distribution-API-Version", "registry/2.0")
OP_TIMEOUT = 10.0  # far more than any example needs: reaching it means a hang

STATUSES = [200, 201, 204, 299, 301, 302, 303, 307, 308, 399, 400, 401, 403, 404, 416]
STATUSES += [429, 500, 502, 503, 599, 999]
BODIES = ["right", "empty", "short", "long", "flipped", "other", "huge", "nested", "bignum"]
BODIES += ["badjson", "errors", "index", "wrongtype"]
LENGTHS = ["auto", "none", "less", "more", "garbage", "negative", "superscript"]
DIGESTS = ["right", "none", "wrong", "garbage", "superscript"]
TYPES = ["right", "none", "index", "list", "octet", "garbage", "schema1"]
CHALLENGES = [None, "basic", "bearer", "bearer-storage", "bearer-anyhost", "bearer-https"]
CHALLENGES += ["bearer-norealm", "unterminated", "negotiate"]
LOCATIONS = [None, "self", "storage", "root", "ftp", "js", "badurl", "closed", "empty"]
RETRY_AFTERS = [None, "0", "-1", "abc", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT"]


@dataclass(frozen=True)
class Twist:
    """How one answer departs from the right one (None / "right": as the right answer)."""

    status: int | None
    body: str
    length: str
    digest: str
    content_type: str
    challenge: str | None
    location: str | None
    retry_after: str | None


TWISTS = st.builds(
    Twist,
    status=st.none() | st.sampled_from(STATUSES),
    body=st.sampled_from(BODIES),
    length=st.sampled_from(LENGTHS),
    digest=st.sampled_from(DIGESTS),
    content_type=st.sampled_from(TYPES),
    challenge=st.sampled_from(CHALLENGES),
    location=st.sampled_from(LOCATIONS),
    retry_after=st.sampled_from(RETRY_AFTERS),
)


@dataclass
class Script:
    """The twists still to apply, one per request in order; then the right answers."""

    twists: deque[Twist] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self) -> Twist | None:
        with self.lock:
            return self.twists.popleft() if self.twists else None


def _right(seen: Seen) -> tuple[int, bytes, str, str]:
    """The honest registry's answer: status, body, content type, digest."""
    path = seen.path.split("?", 1)[0]
    if seen.path.startswith("/token"):
        return 200, TOKEN, "application/json", ""
    if path == "/v2/":
        return 200, b"{}", "application/json", ""
    if "/manifests/" in path:
        return 200, MANIFEST.raw, MANIFEST.media_type, str(MANIFEST.digest)
    name = path.rsplit("/", 1)[-1]
    if ("/blobs/" in path or path.startswith("/storage/")) and name in BLOBS:
        return 200, BLOBS[name], "application/octet-stream", name
    return 404, b'{"errors":[{"code":"NOT_FOUND","message":"no"}]}', "application/json", ""


def _body(kind: str, right: bytes, seen: Seen) -> tuple[bytes, int]:
    """The body for a twist, and how often it repeats."""
    if kind == "huge":
        return b"x" * 1024, 1025  # over every cap but the manifest's
    token = seen.path.startswith("/token")
    bodies = {
        "right": right,
        "empty": b"",
        "short": right[: len(right) // 2],
        "long": right + b" " * 17,
        "flipped": bytes([right[0] ^ 1]) + right[1:] if right else b"\x00",
        "other": CONFIG if right != CONFIG else LAYER,
        "nested": b"[" * 20_000,
        "bignum": (
            b'{"token": "t", "expires_in": 1e400}'
            if token
            else json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": mt.OCI_MANIFEST,
                    "config": {"mediaType": mt.OCI_CONFIG, "digest": str(CONFIG_DESC.digest)},
                    "layers": [],
                }
            ).encode()[:-2]
            + b', "size": 1e400}, "layers": [{"size": 100000000000000000000000000000}]}'
        ),
        "badjson": right[:-1] if right else b"{",
        "errors": b'{"errors": [{"code": 1, "message": ["x"]}, "y", null]}',
        "index": json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": ""}]}).encode(),
        "wrongtype": json.dumps({"schemaVersion": 1, "mediaType": mt.DOCKER_SCHEMA1}).encode(),
    }
    return bodies[kind], 1


def _answer(seen: Seen, twist: Twist | None, hosts: list[str]) -> Answer:
    status, right, content_type, digest = _right(seen)
    headers = [API]
    if twist is None:
        if content_type:
            headers.append(("Content-Type", content_type))
        if digest:
            headers.append(("Docker-Content-Digest", digest))
        return Answer(status, tuple(headers), right)
    body, repeat = _body(twist.body, right, seen)
    size = len(body) * repeat
    length: str | None = {
        "auto": "auto",
        "none": None,
        "less": str(max(size - 5, 0)),
        "more": str(size + 100),
        "garbage": "twelve",
        "negative": "-1",
        "superscript": "\u00b2",
    }[twist.length]
    types = {
        "right": content_type,
        "none": "",
        "index": mt.OCI_INDEX,
        "list": mt.DOCKER_MANIFEST_LIST,
        "octet": "application/octet-stream",
        "garbage": "\u00e9/; ;;",
        "schema1": mt.DOCKER_SCHEMA1_SIGNED,
    }
    if types[twist.content_type]:
        headers.append(("Content-Type", types[twist.content_type]))
    digests = {
        "right": digest,
        "none": "",
        "wrong": str(Digest.of(b"wrong")),
        "garbage": "sha256:xyz",
        "superscript": "sha256:\u00b2",
    }
    if digests[twist.digest]:
        headers.append(("Docker-Content-Digest", digests[twist.digest]))
    registry, storage = hosts
    challenges = {
        "basic": 'Basic realm="fuzz"',
        "bearer": f'Bearer realm="http://{registry}/token",service="fuzz",scope="x:y:pull"',
        "bearer-storage": f'Bearer realm="http://{storage}/token",service="fuzz"',
        "bearer-anyhost": f'Bearer realm="http://0.0.0.0:{storage.rsplit(":", 1)[1]}/token"',
        "bearer-https": f'Bearer realm="https://{registry}/token"',
        "bearer-norealm": 'Bearer service="fuzz"',
        "unterminated": 'Bearer realm="http://127.0.0.1',
        "negotiate": "Negotiate abc",
    }
    if twist.challenge is not None:
        headers.append(("WWW-Authenticate", challenges[twist.challenge]))
    name = seen.path.split("?", 1)[0].rsplit("/", 1)[-1]
    locations = {
        "self": seen.path,
        "storage": f"http://{storage}/storage/{name}?sig=1",
        "root": "/v2/",
        "ftp": "ftp://127.0.0.1/x",
        "js": "javascript:alert(1)",
        "badurl": "http://[::1",
        "closed": "http://127.0.0.1:1/x",
        "empty": "",
    }
    if twist.location is not None:
        headers.append(("Location", locations[twist.location]))
    if twist.retry_after is not None:
        headers.append(("Retry-After", twist.retry_after))
    return Answer(twist.status or status, tuple(headers), body, repeat, length)


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[HostileServer, Script]]:
    """A registry (server 0) and its storage/token host (server 1), answering by the script."""
    script = Script()

    def respond(seen: Seen) -> Answer:
        return _answer(seen, script.next(), server.hosts)

    with HostileServer(respond, servers=2) as server:
        yield server, script


def _client(registry: str, storage: str, config_dir: Path) -> RegistryClient:
    (config_dir / "config.json").write_text(
        json.dumps({"auths": {registry: {"username": "alice", "password": "s3cret"}}})
    )
    hosts = {registry: HostConfig(http=True), storage: HostConfig(http=True)}
    return RegistryClient(
        RegistryConfig(hosts),
        DockerCredentials(config_dir),
        retry=RetryPolicy(attempts=2, initial_wait=0.0, max_wait=0.0),
        timeout=5.0,
    )


async def _attempt(operation: Callable[[], Awaitable[None]]) -> None:
    """Run one operation: a PolybuildError is a fine outcome, a hang or anything else is not."""
    with contextlib.suppress(PolybuildError):
        await asyncio.wait_for(operation(), OP_TIMEOUT)


@settings(
    max_examples=fuzz_examples(100),
    deadline=timedelta(seconds=20),
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(twists=st.lists(TWISTS, max_size=8))
def test_every_operation_returns_verified_content_or_a_polybuild_error(
    hostile: tuple[HostileServer, Script], twists: list[Twist]
) -> None:
    server, script = hostile
    registry, storage = server.hosts
    server.clear()
    with script.lock:
        script.twists = deque(twists)
    by_digest = parse(f"{registry}/fuzz/app@{MANIFEST.digest}")
    by_tag = parse(f"{registry}/fuzz/app:1")

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        content = ContentStore(root / "content")

        async def resolve() -> None:
            descriptor = await client.resolve(by_digest)
            assert descriptor.digest == MANIFEST.digest

        async def manifest() -> None:
            stored = await client.get_manifest(by_digest)
            assert stored.raw == MANIFEST.raw and stored.digest == MANIFEST.digest

        async def tagged() -> None:
            stored = await client.get_manifest(by_tag)
            assert Digest.of(stored.raw) == stored.digest

        async def config() -> None:
            assert await client.fetch_bytes(by_tag, CONFIG_DESC) == CONFIG

        async def layer() -> None:
            await client.fetch_blob(by_tag, LAYER_DESC, content)

        async def scenario() -> None:
            async with client:
                for operation in (resolve, manifest, tagged, config, layer):
                    await _attempt(operation)

        client = _client(registry, storage, root)
        asyncio.run(scenario())
        if content.exists(LAYER_DESC.digest):
            assert content.get(LAYER_DESC.digest) == LAYER
        ingest = content.ingest_dir
        assert not ingest.exists() or not any(ingest.iterdir()), "a partial blob was left"

    for seen in server.requests():
        # credentials: basic or tokens to the registry, basic to a loopback realm it names
        if seen.server == 1 and not seen.path.startswith("/token"):
            assert seen.authorization is None, seen
        assert not seen.headers.get("host", "").startswith("0.0.0.0"), seen
