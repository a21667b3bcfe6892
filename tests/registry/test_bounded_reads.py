"""A registry answering with huge bodies cannot make the client hold them: configs, error
bodies, token answers, manifests and blobs are read with caps, and refused while they stream
(a 173-byte config descriptor once made a pull read a 731 MB answer into memory)."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from polybuild.errors import ImageNotFoundError, RegistryError
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.manifest import Index, encode_index
from polybuild.image.reference import parse
from polybuild.image.walk import MAX_MANIFEST_SIZE
from polybuild.registry import RegistryClient
from tests.registry.conftest import make_client
from tests.registry.hostile import Answer, HostileServer, Seen

pytestmark = pytest.mark.root  # needs root: containers, mounts, binfmt_misc

HUGE = 48 << 20  # far beyond any cap below, small enough for the old code to finish reading
SMALL_PEAK = 4 << 20
CONFIG = Descriptor(mt.OCI_CONFIG, Digest.of(b"{}" * 86 + b"\n"), 173)
API = (("Docker-Distribution-API-Version", "registry/2.0"),)
Operation = Callable[[RegistryClient, str, Path], Awaitable[object]]


def _huge(status: int, *, length: bool = False) -> Answer:
    """HUGE bytes of JSON-looking junk; without a Content-Length unless `length`."""
    return Answer(status, API, b'{"errors": []}\n' * 16, HUGE // 256, "auto" if length else None)


def _config(client: RegistryClient, host: str, tmp: Path) -> Awaitable[object]:
    return client.fetch_bytes(parse(f"{host}/app:1"), CONFIG)


def _blob(client: RegistryClient, host: str, tmp: Path) -> Awaitable[object]:
    return client.fetch_blob(parse(f"{host}/app:1"), CONFIG, ContentStore(tmp / "cs"))


def _manifest(client: RegistryClient, host: str, tmp: Path) -> Awaitable[object]:
    return client.get_manifest(parse(f"{host}/app:1"))


def _push_manifest(client: RegistryClient, host: str, tmp: Path) -> Awaitable[object]:
    return client.push_manifest(parse(f"{host}/app:1"), encode_index(Index(())))


CASES: dict[str, tuple[str, Answer, Operation, type[Exception], str, int]] = {
    # name: (path answered, answer, operation, error, message, peak allowed)
    "config": ("/blobs/", _huge(200), _config, RegistryError, "wrong content", SMALL_PEAK),
    "config-declared": (
        "/blobs/",
        _huge(200, length=True),
        _config,
        RegistryError,
        "is 173 bytes but the registry sends",
        SMALL_PEAK,
    ),
    "error-body": ("/manifests/", _huge(404), _manifest, ImageNotFoundError, "404", SMALL_PEAK),
    "push-error-body": (
        "/manifests/",
        _huge(400),
        _push_manifest,
        RegistryError,
        "400",
        SMALL_PEAK,
    ),
    # deep nesting made the JSON decoder raise RecursionError, not a PolybuildError
    "nested-error-body": (
        "/manifests/",
        Answer(404, API, b"[" * (60 << 10)),
        _manifest,
        ImageNotFoundError,
        "404",
        SMALL_PEAK,
    ),
    "token": ("/token", _huge(200), _manifest, RegistryError, "larger than", SMALL_PEAK),
    "blob": ("/blobs/", _huge(200), _blob, RegistryError, "wrong content", SMALL_PEAK),
    # manifests may be up to MAX_MANIFEST_SIZE: that cap is the bound
    "manifest": (
        "/manifests/",
        _huge(200),
        _manifest,
        RegistryError,
        "larger than",
        MAX_MANIFEST_SIZE + SMALL_PEAK,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_huge_answers_are_refused_while_they_stream(case: str, tmp_path: Path) -> None:
    path, answer, operation, error, message, allowed = CASES[case]

    def respond(seen: Seen) -> Answer:
        if path in seen.path:
            return answer
        if seen.path == "/v2/" and path == "/token":
            realm = f"http://{hostile.host}/token"
            challenge = f'Bearer realm="{realm}",service="registry"'
            return Answer(401, (*API, ("WWW-Authenticate", challenge)))
        return Answer(200, API, b"{}")

    with HostileServer(respond) as hostile:
        client = make_client()

        async def scenario() -> None:
            async with client:
                await operation(client, hostile.host, tmp_path)

        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            with pytest.raises(error) as failure:
                asyncio.run(scenario())
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
    assert peak < allowed, f"{case}: {peak / 2**20:.1f} MiB held while reading the answer"
    assert message in str(failure.value)
    assert ContentStore(tmp_path / "cs").exists(CONFIG.digest) is False
