"""Reading registry answers into memory with a cap, so a hostile or broken server cannot make a
pull hold more than that (error details, tokens, manifests and configs are all small)."""

from __future__ import annotations

import httpx

from polybuild.errors import RegistryError

# An error body is only mined for a `CODE: message` detail.
MAX_ERROR_BODY = 64 << 10
# Token answers are a JWT or two and some JSON around them.
MAX_TOKEN_ANSWER = 1 << 20
_KEPT_EXTENSIONS = ("http_version", "reason_phrase")
# Bodies are read raw: requests ask for `Accept-Encoding: identity`, so no decompression (and
# no decompression bomb) sits between the network and the cap; blobs are checked by digest.


def is_size(text: str) -> bool:
    """A Content-Length as HTTP writes it (str.isdigit alone also takes "²")."""
    return text.isascii() and text.isdigit()


async def _chunks(response: httpx.Response, limit: int) -> tuple[list[bytes], bool]:
    """Up to `limit` bytes of a streamed body, and whether that was all of it.

    Chunks in a list, not a growing bytearray, whose reallocations briefly need twice its size.
    """
    if response.is_stream_consumed:  # already read (transports in tests answer that way)
        return [response.content[:limit]], len(response.content) <= limit
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_raw():
        if size + len(chunk) > limit:
            chunks.append(chunk[: limit - size])
            return chunks, False
        chunks.append(chunk)
        size += len(chunk)
    return chunks, True


async def read_at_most(response: httpx.Response, limit: int) -> tuple[bytes, bool]:
    """Up to `limit` bytes of a streamed body, and whether that was all of it."""
    chunks, complete = await _chunks(response, limit)
    return b"".join(chunks), complete


async def read_body(response: httpx.Response, limit: int, where: str, what: str) -> bytes:
    """A streamed body of at most `limit` bytes; a longer one is refused while it streams."""
    declared = response.headers.get("Content-Length", "")
    if is_size(declared) and int(declared) > limit:
        raise RegistryError(f"{where}: {what} is {declared} bytes, larger than {_size(limit)}")
    chunks, complete = await _chunks(response, limit)
    if not complete:
        raise RegistryError(f"{where}: {what} is larger than {_size(limit)}")
    return b"".join(chunks)


def _size(limit: int) -> str:
    for unit, shift in (("MiB", 20), ("KiB", 10)):
        if limit >= 1 << shift and limit % (1 << shift) == 0:
            return f"{limit >> shift} {unit}"
    return f"{limit} bytes"


async def buffered(response: httpx.Response, limit: int = MAX_ERROR_BODY) -> httpx.Response:
    """`response` (streamed) as a read one holding at most `limit` bytes of its body.

    The rest of the body is never read: the stream is closed. A failure answer whose body
    breaks off is kept without it (the status is what counts; the detail is a nicety).
    """
    try:
        data, _ = await read_at_most(response, limit)
    except httpx.TransportError:
        if response.status_code < 300:
            raise
        data = b""
    finally:
        await response.aclose()
    # The bytes are raw: a Content-Encoding left in place would make httpx decode them again.
    # Raw header bytes: values a server sent in Latin-1 would not encode back from text.
    headers = [
        (key, value) for key, value in response.headers.raw if key.lower() != b"content-encoding"
    ]
    extensions = {k: v for k, v in response.extensions.items() if k in _KEPT_EXTENSIONS}
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=data,
        request=response.request,
        extensions=extensions,
    )
