"""The registry client: resolve references, fetch manifests and blobs (verified), check, mount
and upload blobs, push manifests with their exact bytes, list tags. Pulls go through mirrors."""

from __future__ import annotations

import contextlib
import functools
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from types import TracebackType
from typing import BinaryIO, TypeVar

import httpx

from polybuild.errors import (
    ImageError,
    ImageNotFoundError,
    RegistryError,
)
from polybuild.image import mediatypes as mt
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest, InvalidDigestError
from polybuild.image.manifest import Index, Manifest, Stored, parse_manifest_or_index
from polybuild.image.reference import Reference
from polybuild.image.walk import MAX_MANIFEST_SIZE
from polybuild.registry.auth import Authorizer
from polybuild.registry.body import is_size, read_body
from polybuild.registry.config import RegistryConfig, load_config
from polybuild.registry.credentials import DockerCredentials
from polybuild.registry.download import blob_to_memory, blob_to_store
from polybuild.registry.http import (
    Connections,
    Endpoint,
    api_host,
    raise_for_status,
)
from polybuild.registry.retry import RetryPolicy, retrying
from polybuild.registry.upload import Uploader, UploadResult

T = TypeVar("T")
MANIFEST_ACCEPT = ", ".join(
    (mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST, mt.OCI_MANIFEST, mt.DOCKER_MANIFEST)
)
DEFAULT_CHUNK_SIZE = 32 << 20
TAGS_PAGE = 100
_NEXT_LINK = re.compile(r'<([^>]*)>[^,]*;\s*rel="?next"?')


def _media_type_of(response: httpx.Response) -> str | None:
    value = response.headers.get("Content-Type", "").split(";", 1)[0].strip()
    return value if mt.is_index(value) or mt.is_manifest(value) else None


class RegistryClient:
    """An async registry client; use it as `async with RegistryClient() as client:`.

    `chunk_size` is the size of each PATCH of a chunked upload; blobs up to that size are
    uploaded in one streamed PUT. `transport` replaces the network for every request (token
    servers and storage hosts too): `polybuild.testing.registry.FakeRegistry` in tests.
    Every failure is a PolybuildError naming the registry and the repository.
    """

    def __init__(
        self,
        config: RegistryConfig | None = None,
        credentials: DockerCredentials | None = None,
        *,
        retry: RetryPolicy | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        timeout: float = 60.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config if config is not None else load_config()
        self.retry = retry or RetryPolicy()
        self.authorizer = Authorizer(credentials)
        self.connections = Connections(
            self.config,
            self.authorizer,
            self.retry,
            httpx.Timeout(timeout, connect=min(timeout, 15.0)),
            transport,
        )
        self.uploader = Uploader(self.connections, self.retry, chunk_size)

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.connections.aclose()

    # ---- endpoints -------------------------------------------------------------------------

    def endpoints(self, ref: Reference, *, pull: bool = True) -> list[Endpoint]:
        """Where to send `ref`'s requests: for pulls its mirrors first, then the origin."""
        origin = Endpoint(api_host(ref.domain))
        if not pull:
            return [origin]
        mirrors = self.config.host(ref.domain).mirrors
        return [*(Endpoint(m.host, m.prefix, mirror=True) for m in mirrors), origin]

    async def _through_mirrors(
        self, ref: Reference, what: str, operation: Callable[[Endpoint], Awaitable[T]]
    ) -> T:
        """Try each pull endpoint; a mirror that lacks the content or fails is skipped."""
        endpoints = self.endpoints(ref)
        for endpoint in endpoints[:-1]:
            try:
                return await retrying(
                    self.retry,
                    functools.partial(operation, endpoint),
                    f"{what} from mirror {endpoint.host}",
                )
            except (RegistryError, ImageNotFoundError):
                continue  # the mirror lacks it or is down: go on to the next, then the origin
        origin = endpoints[-1]
        return await retrying(
            self.retry, lambda: operation(origin), f"{what} ({origin.describe(ref.path)})"
        )

    # ---- manifests -------------------------------------------------------------------------

    async def resolve(self, ref: Reference) -> Descriptor:
        """The descriptor `ref` (tag or digest) points at, without downloading the manifest."""
        return await self._through_mirrors(
            ref, f"resolving {ref}", lambda e: self._resolve_once(e, ref)
        )

    async def _resolve_once(self, endpoint: Endpoint, ref: Reference) -> Descriptor:
        target = str(ref.digest) if ref.digest else (ref.tag or "latest")
        path = f"/v2/{endpoint.path(ref.path)}/manifests/{target}"
        where = endpoint.describe(ref.path)
        response = await self.connections.send(
            endpoint, "HEAD", path, repository=ref.path, headers={"Accept": MANIFEST_ACCEPT}
        )
        raise_for_status(response, where, f"manifest {target}", not_found="manifest")
        media_type = _media_type_of(response)
        digest_header = response.headers.get("Docker-Content-Digest", "")
        length = response.headers.get("Content-Length", "")
        if media_type is None or not digest_header or not is_size(length):
            # Some registries leave headers out of HEAD answers: fetch and hash the bytes.
            stored = await self._get_manifest_once(endpoint, ref, target, None)
            return stored.descriptor()
        try:
            digest = Digest.parse(digest_header)
        except InvalidDigestError:
            raise RegistryError(
                f"{where}: invalid Docker-Content-Digest {digest_header!r}"
            ) from None
        if ref.digest is not None and digest != ref.digest:
            raise RegistryError(f"{where}: asked for {ref.digest} but the registry has {digest}")
        return Descriptor(media_type, digest, int(length))

    async def get_manifest(
        self, ref: Reference, descriptor: Descriptor | None = None
    ) -> Stored[Manifest] | Stored[Index]:
        """The manifest or index `descriptor` (else `ref`) names, exact bytes, verified."""
        target = descriptor.digest if descriptor else ref.digest
        text = str(target) if target else (ref.tag or "latest")
        media_type = descriptor.media_type if descriptor else None
        return await self._through_mirrors(
            ref,
            f"fetching manifest {ref.name}@{text}" if target else f"fetching manifest {ref}",
            lambda e: self._get_manifest_once(e, ref, text, media_type),
        )

    async def _get_manifest_once(
        self, endpoint: Endpoint, ref: Reference, target: str, media_type: str | None
    ) -> Stored[Manifest] | Stored[Index]:
        where = endpoint.describe(ref.path)
        path = f"/v2/{endpoint.path(ref.path)}/manifests/{target}"
        response = await self.connections.send(
            endpoint,
            "GET",
            path,
            repository=ref.path,
            headers={"Accept": MANIFEST_ACCEPT},
            stream=True,
        )
        try:
            raise_for_status(response, where, f"manifest {target}", not_found="manifest")
            data = await read_body(response, MAX_MANIFEST_SIZE, where, f"manifest {target}")
        finally:
            await response.aclose()
        declared = response.headers.get("Docker-Content-Digest", "")
        expected = target if target.count(":") == 1 and not target.startswith(":") else declared
        if expected:
            try:
                wanted = Digest.parse(expected)
            except InvalidDigestError:
                wanted = None
            if wanted is not None and Digest.of(data, wanted.algorithm) != wanted:
                raise RegistryError(
                    f"{where}: manifest {target} does not match its digest {wanted} "
                    f"(its bytes hash to {Digest.of(data, wanted.algorithm)}); refused",
                    hint="the registry or a proxy in between corrupted it",
                )
        try:
            return parse_manifest_or_index(data, media_type or _media_type_of(response))
        except ImageError as exc:
            raise ImageError(f"{where}: {exc}", hint=exc.hint) from None

    async def manifest_exists(self, ref: Reference, digest: Digest) -> bool:
        """Whether the repository (at its origin) has the manifest `digest`."""
        endpoint = self.endpoints(ref, pull=False)[0]

        async def head() -> bool:
            path = f"/v2/{ref.path}/manifests/{digest}"
            response = await self.connections.send(
                endpoint,
                "HEAD",
                path,
                repository=ref.path,
                actions=("pull", "push"),
                headers={"Accept": MANIFEST_ACCEPT},
            )
            if response.status_code == 404:
                return False
            raise_for_status(response, endpoint.describe(ref.path), f"checking manifest {digest}")
            return True

        return await retrying(self.retry, head, f"checking manifest {digest} in {ref.name}")

    async def push_manifest(
        self, ref: Reference, stored: Stored[Manifest] | Stored[Index], *, target: str | None = None
    ) -> None:
        """PUT the exact bytes under `target` (default: the tag, else the digest)."""
        endpoint = self.endpoints(ref, pull=False)[0]
        name = target or ref.tag or str(stored.digest)
        where = endpoint.describe(ref.path)

        async def put() -> None:
            response = await self.connections.send(
                endpoint,
                "PUT",
                f"/v2/{ref.path}/manifests/{name}",
                repository=ref.path,
                actions=("pull", "push"),
                headers={"Content-Type": stored.media_type},
                body=stored.raw,
            )
            raise_for_status(response, where, f"pushing manifest {name}")
            echoed = response.headers.get("Docker-Content-Digest")
            if echoed and echoed != str(stored.digest):
                raise RegistryError(
                    f"{where}: the registry stored manifest {name} as {echoed}, "
                    f"not {stored.digest} (it rewrote our bytes)"
                )

        await retrying(self.retry, put, f"pushing manifest {ref.name}:{name}")

    async def list_tags(self, ref: Reference) -> list[str]:
        """Every tag of the repository, following the registry's pagination."""
        endpoint = self.endpoints(ref, pull=False)[0]
        where = endpoint.describe(ref.path)
        tags: list[str] = []
        url: str | None = f"/v2/{ref.path}/tags/list?n={TAGS_PAGE}"
        seen: set[str] = set()
        while url is not None:
            if url in seen:
                raise RegistryError(f"{where}: listing tags: the pages link back to {url}")
            seen.add(url)
            page_url = url

            async def page(page_url: str = page_url) -> tuple[list[str], str | None]:
                response = await self.connections.send(
                    endpoint, "GET", page_url, repository=ref.path, stream=True
                )
                try:
                    raise_for_status(response, where, "listing tags", not_found="manifest")
                    raw = await read_body(response, MAX_MANIFEST_SIZE, where, "the tag list")
                finally:
                    await response.aclose()
                return _parse_tags(raw, where), _next_link(response)

            found, url = await retrying(self.retry, page, f"listing tags of {ref.name}")
            tags.extend(found)
        return tags

    # ---- blobs -----------------------------------------------------------------------------

    async def blob_exists(self, ref: Reference, descriptor: Descriptor) -> bool:
        """HEAD the blob in the repository (its origin)."""
        return await self.uploader.exists(self.endpoints(ref, pull=False)[0], ref.path, descriptor)

    async def fetch_blob(
        self, ref: Reference, descriptor: Descriptor, content: ContentStore
    ) -> None:
        """Download a blob into the content store, verified against its digest and size.

        Nothing becomes visible unless the bytes match; a body cut short is fetched again.
        """
        if content.exists(descriptor.digest):
            content.touch(descriptor.digest)
            return
        await self._through_mirrors(
            ref,
            f"fetching blob {descriptor.digest}",
            lambda e: blob_to_store(self.connections, e, ref.path, descriptor, content),
        )

    async def fetch_bytes(self, ref: Reference, descriptor: Descriptor) -> bytes:
        """A small blob (a config) in memory, verified against its digest and size."""
        if descriptor.size > MAX_MANIFEST_SIZE:
            raise ImageError(f"{descriptor.digest} is too large to read into memory")
        return await self._through_mirrors(
            ref,
            f"fetching blob {descriptor.digest}",
            lambda e: blob_to_memory(self.connections, e, ref.path, descriptor),
        )

    async def push_blob(
        self,
        ref: Reference,
        descriptor: Descriptor,
        opener: Callable[[], BinaryIO],
        *,
        mount_from: Sequence[Reference] = (),
    ) -> UploadResult:
        """Make the blob exist in `ref`'s repository: present, mounted, or uploaded."""
        endpoint = self.endpoints(ref, pull=False)[0]
        sources = [s.path for s in mount_from if s.domain == ref.domain and s.path != ref.path]
        return await self.uploader.ensure(endpoint, ref.path, descriptor, opener, sources)

    async def mount_blob(self, ref: Reference, descriptor: Descriptor, source: Reference) -> bool:
        """Cross-repository mount from `source` (same registry); False if it was not mounted."""
        if source.domain != ref.domain:
            return False
        endpoint = self.endpoints(ref, pull=False)[0]
        return await self.uploader.mount(endpoint, ref.path, descriptor, source.path)


@contextlib.asynccontextmanager
async def client_for(
    client: RegistryClient | None, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[RegistryClient]:
    """`client` if given (the caller closes it), else a new one over `transport` (default: the
    network) that is closed when the block ends."""
    if client is not None:
        yield client
        return
    async with RegistryClient(transport=transport) as made:
        yield made


def _parse_tags(raw: bytes, where: str) -> list[str]:
    try:
        tags = json.loads(raw).get("tags") or []
    except (ValueError, AttributeError, RecursionError):
        tags = None
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise RegistryError(f"{where}: listing tags: the answer is not a tag list")
    return tags


def _next_link(response: httpx.Response) -> str | None:
    match = _NEXT_LINK.search(response.headers.get("Link", ""))
    return match.group(1) if match else None
