"""Blob downloads from one endpoint (a mirror or the origin): the GET with redirects followed,
a size check before reading, and bytes verified against the descriptor, into the content store
or into memory. Retries and mirror fallback are the client's."""

from __future__ import annotations

import asyncio

import httpx

from polybuild.errors import DigestMismatchError, RegistryError
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.registry.body import is_size, read_at_most
from polybuild.registry.http import Connections, Endpoint, raise_for_status
from polybuild.registry.retry import TransientError

_READ_CHUNK = 1 << 20


async def _open(
    connections: Connections, endpoint: Endpoint, repository: str, descriptor: Descriptor
) -> httpx.Response:
    """GET the blob: a streamed 2xx answer that may be the blob (its Content-Length is not
    larger), to be read and closed by the caller."""
    where = endpoint.describe(repository)
    response = await connections.send(
        endpoint,
        "GET",
        f"/v2/{endpoint.path(repository)}/blobs/{descriptor.digest}",
        repository=repository,
        stream=True,
        follow_redirects=True,
    )
    try:
        raise_for_status(response, where, f"blob {descriptor.digest}", not_found="blob")
        _check_length(response, descriptor, where)
    except BaseException:
        await response.aclose()
        raise
    return response


async def blob_to_store(
    connections: Connections,
    endpoint: Endpoint,
    repository: str,
    descriptor: Descriptor,
    content: ContentStore,
) -> None:
    """Stream the blob into the content store; nothing becomes visible unless the bytes match.

    A body cut short is a TransientError (fetched again); wrong bytes are a RegistryError.
    """
    where = endpoint.describe(repository)
    response = await _open(connections, endpoint, repository, descriptor)
    writer = content.writer(descriptor.digest, descriptor.size)
    try:
        async for chunk in response.aiter_raw(_READ_CHUNK):
            writer.write(chunk)
        if writer.written < descriptor.size:
            raise TransientError(
                f"{where}: blob {descriptor.digest} ended after {writer.written} of "
                f"{descriptor.size} bytes"
            )
        await asyncio.to_thread(writer.commit)
    except DigestMismatchError as exc:
        detail = str(exc).removesuffix("; refused")
        raise RegistryError(
            f"{where}: blob {descriptor.digest} has the wrong content ({detail}); refused",
            hint="the registry or a proxy in between served corrupt data; nothing was stored",
        ) from None
    finally:
        writer.abort()
        await response.aclose()


async def blob_to_memory(
    connections: Connections, endpoint: Endpoint, repository: str, descriptor: Descriptor
) -> bytes:
    """The blob's bytes (a small one: a config), verified against its digest and size."""
    where = endpoint.describe(repository)
    response = await _open(connections, endpoint, repository, descriptor)
    try:
        # One byte more than the descriptor says is enough to know the answer is wrong.
        data, _ = await read_at_most(response, descriptor.size + 1)
    finally:
        await response.aclose()
    if len(data) < descriptor.size:
        raise TransientError(f"{where}: blob {descriptor.digest} was cut short")
    actual = Digest.of(data, descriptor.digest.algorithm)
    if actual != descriptor.digest or len(data) != descriptor.size:
        raise RegistryError(
            f"{where}: blob {descriptor.digest} has the wrong content (its {len(data)} "
            f"bytes hash to {actual}); refused",
            hint="the registry or a proxy in between served corrupt data",
        )
    return data


def _check_length(response: httpx.Response, descriptor: Descriptor, where: str) -> None:
    """Refuse an answer whose Content-Length already says it is not the blob, before reading."""
    declared = response.headers.get("Content-Length", "")
    if is_size(declared) and int(declared) > descriptor.size:
        raise RegistryError(
            f"{where}: blob {descriptor.digest} is {descriptor.size} bytes but the registry "
            f"sends {declared}; refused",
            hint="the registry or a proxy in between served the wrong data; nothing was stored",
        )
