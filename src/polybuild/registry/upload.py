"""Blob uploads: HEAD first, cross-repository mounts, streamed monolithic PUTs and chunked
PATCH uploads that resume from the registry's offset after a failure."""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Callable, Sequence
from typing import BinaryIO

import httpx

from polybuild.errors import ContentError, RegistryError
from polybuild.image.descriptor import Descriptor
from polybuild.registry.http import Body, Connections, Endpoint, error_detail, raise_for_status
from polybuild.registry.retry import RetryPolicy, TransientError, describe, retrying

_READ_CHUNK = 1 << 20
_OCTET = "application/octet-stream"
# Answers meaning the upload session is gone or out of step: start a new one.
_SESSION_LOST = frozenset({400, 404, 416})


class UploadResult(enum.Enum):
    """How a blob came to be in the repository."""

    EXISTS = "exists"
    MOUNTED = "mounted"
    UPLOADED = "uploaded"


class _Restart(Exception):
    """The upload session is lost; start again with a new one."""


def file_body(
    opener: Callable[[], BinaryIO], offset: int, length: int
) -> Callable[[], AsyncIterator[bytes]]:
    """A re-startable streamed body: `length` bytes of the file from `offset`, 1 MiB at a time."""

    async def chunks() -> AsyncIterator[bytes]:
        try:
            with opener() as file:
                file.seek(offset)
                remaining = length
                while remaining:
                    data = file.read(min(_READ_CHUNK, remaining))
                    if not data:
                        raise ContentError(
                            f"blob file ended {remaining} bytes early while uploading"
                        )
                    remaining -= len(data)
                    yield data
        except OSError as exc:
            raise ContentError(f"cannot read a blob to upload: {exc.strerror or exc}") from None

    return chunks


class _Budget:
    """Failures allowed since the last progress; sleeps between them, gives up at the limit."""

    def __init__(self, policy: RetryPolicy, what: str) -> None:
        self.policy = policy
        self.what = what
        self.failures = 0

    def progress(self) -> None:
        self.failures = 0

    async def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failures >= self.policy.attempts:
            raise RegistryError(
                f"{self.what}: {describe(exc)} (gave up after {self.failures} attempts)",
                hint="check that the registry is up and reachable, then push again",
            ) from exc
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        await asyncio.sleep(self.policy.wait(self.failures, retry_after))


class Uploader:
    """Puts blobs into repositories; `chunk_size` splits large blobs into PATCH requests."""

    def __init__(self, connections: Connections, policy: RetryPolicy, chunk_size: int) -> None:
        self.connections = connections
        self.policy = policy
        self.chunk_size = max(chunk_size, 1)

    async def exists(self, endpoint: Endpoint, repository: str, descriptor: Descriptor) -> bool:
        async def head() -> bool:
            response = await self.connections.send(
                endpoint,
                "HEAD",
                f"/v2/{repository}/blobs/{descriptor.digest}",
                repository=repository,
                actions=("pull", "push"),
            )
            if response.status_code == 404:
                return False
            raise_for_status(
                response, endpoint.describe(repository), f"checking blob {descriptor.digest}"
            )
            return True

        return await retrying(
            self.policy, head, f"checking blob {descriptor.digest} in {repository}"
        )

    async def mount(
        self, endpoint: Endpoint, repository: str, descriptor: Descriptor, source: str
    ) -> bool:
        mounted, location = await self._start(endpoint, repository, descriptor, source)
        if location is not None:
            await self._cancel(endpoint, repository, location)
        return mounted

    async def ensure(
        self,
        endpoint: Endpoint,
        repository: str,
        descriptor: Descriptor,
        opener: Callable[[], BinaryIO],
        sources: Sequence[str] = (),
    ) -> UploadResult:
        """Make the blob exist in the repository, uploading only when it must."""
        if await self.exists(endpoint, repository, descriptor):
            return UploadResult.EXISTS
        location: str | None = None
        for source in sources:
            mounted, location = await self._start(endpoint, repository, descriptor, source)
            if mounted:
                return UploadResult.MOUNTED
            if location is not None:
                break  # the registry opened an upload session instead; use it
        await self._upload(endpoint, repository, descriptor, opener, location)
        return UploadResult.UPLOADED

    async def _start(
        self, endpoint: Endpoint, repository: str, descriptor: Descriptor, source: str | None
    ) -> tuple[bool, str | None]:
        """POST an upload (a mount when `source` is given): (mounted, session location)."""
        params = {"mount": str(descriptor.digest), "from": source} if source else None
        extra = (f"repository:{source}:pull",) if source else ()
        where = endpoint.describe(repository)

        async def post() -> tuple[bool, str | None]:
            response = await self.connections.send(
                endpoint,
                "POST",
                f"/v2/{repository}/blobs/uploads/",
                repository=repository,
                actions=("pull", "push"),
                extra_scopes=extra,
                params=params,
                headers={"Content-Length": "0"},
            )
            if response.status_code == 201 and source:
                return True, None
            raise_for_status(response, where, "starting a blob upload")
            location = response.headers.get("Location")
            if response.status_code != 202 or not location:
                raise RegistryError(f"{where}: starting a blob upload: no upload location")
            return False, location

        return await retrying(self.policy, post, f"starting an upload to {repository}")

    async def _cancel(self, endpoint: Endpoint, repository: str, location: str) -> None:
        # Best effort: the registry expires abandoned sessions itself.
        with contextlib.suppress(RegistryError, TransientError, httpx.TransportError):
            await self.connections.send(
                endpoint, "DELETE", location, repository=repository, actions=("pull", "push")
            )

    async def _upload(
        self,
        endpoint: Endpoint,
        repository: str,
        descriptor: Descriptor,
        opener: Callable[[], BinaryIO],
        location: str | None,
    ) -> None:
        budget = _Budget(self.policy, f"uploading blob {descriptor.digest}")
        while True:
            if location is None:
                _, location = await self._start(endpoint, repository, descriptor, None)
                assert location is not None
            try:
                if descriptor.size <= self.chunk_size:
                    headers = {"Content-Type": _OCTET, "Content-Length": str(descriptor.size)}
                    body = file_body(opener, 0, descriptor.size)
                    await self._commit(endpoint, repository, descriptor, location, headers, body)
                else:
                    await self._chunked(endpoint, repository, descriptor, opener, location, budget)
                return
            except (TransientError, httpx.TransportError, _Restart) as exc:
                await budget.failed(exc)
                location = None

    async def _commit(
        self,
        endpoint: Endpoint,
        repository: str,
        descriptor: Descriptor,
        location: str,
        headers: dict[str, str],
        body: Body = None,
    ) -> None:
        """The PUT that ends an upload session: with the whole blob (monolithic), or empty
        after the PATCHes; the registry then checks the digest."""
        response = await self.connections.send(
            endpoint,
            "PUT",
            location,
            repository=repository,
            actions=("pull", "push"),
            params={"digest": str(descriptor.digest)},
            headers=headers,
            body=body,
        )
        where = endpoint.describe(repository)
        if response.status_code in (400, 404) and b"DIGEST_INVALID" in response.content:
            raise RegistryError(
                f"{where}: the registry refused blob {descriptor.digest}: its content does "
                f"not match the digest ({error_detail(response)})",
                hint="the local copy may be corrupt: check it with `polybuild images` / rmi",
            )
        _check_session(response, where)
        raise_for_status(response, where, f"committing blob {descriptor.digest}")

    async def _chunked(
        self,
        endpoint: Endpoint,
        repository: str,
        descriptor: Descriptor,
        opener: Callable[[], BinaryIO],
        location: str,
        budget: _Budget,
    ) -> None:
        where = endpoint.describe(repository)
        offset = 0
        while offset < descriptor.size:
            end = min(offset + self.chunk_size, descriptor.size)
            try:
                response = await self.connections.send(
                    endpoint,
                    "PATCH",
                    location,
                    repository=repository,
                    actions=("pull", "push"),
                    headers={
                        "Content-Type": _OCTET,
                        "Content-Range": f"{offset}-{end - 1}",
                        "Content-Length": str(end - offset),
                    },
                    body=file_body(opener, offset, end - offset),
                )
            except (TransientError, httpx.TransportError) as exc:
                await budget.failed(exc)
                offset, location = await self._resume(endpoint, repository, location, offset)
                continue
            _check_session(response, where)
            raise_for_status(response, where, f"uploading blob {descriptor.digest}")
            location = response.headers.get("Location") or location
            offset = end
            budget.progress()
        await self._commit(endpoint, repository, descriptor, location, {"Content-Length": "0"})

    async def _resume(
        self, endpoint: Endpoint, repository: str, location: str, confirmed: int
    ) -> tuple[int, str]:
        """Ask the registry how much of the upload it has: (offset, location) to go on from."""
        response = await self.connections.send(
            endpoint, "GET", location, repository=repository, actions=("pull", "push")
        )
        if response.status_code not in (200, 204):
            raise _Restart(f"upload status answered {error_detail(response)}")
        range_header = response.headers.get("Range", "")
        start, _, end = range_header.partition("-")
        if start != "0" or not end.isdigit():
            raise _Restart(f"upload status has no usable Range ({range_header!r})")
        # "0-0" is what distribution says for an empty upload as well as for one byte.
        offset = confirmed if int(end) == 0 else int(end) + 1
        return offset, response.headers.get("Location") or location


def _check_session(response: httpx.Response, where: str) -> None:
    """Raise _Restart when the answer says the upload session is gone or out of step."""
    if response.status_code in _SESSION_LOST:
        raise _Restart(f"{where}: upload session lost ({error_detail(response)})")
