"""Each FROM reference resolved to a digest once per build, for every node that asks, so
all the nodes of a multi-node build use the same bytes even if the tag moves meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from polybuild.errors import PolybuildError
from polybuild.image.digest import Digest
from polybuild.image.reference import Reference, parse

Resolve = Callable[[Reference], Awaitable[Digest]]


async def registry_digest(ref: Reference) -> Digest:
    """What `ref` points at in its registry now (one HEAD request; nothing is pulled)."""
    # Imported only when a node asks (httpx is slow to import).
    from polybuild.registry.client import client_for

    async with client_for(None) as client:
        return (await client.resolve(ref)).digest


class Pins:
    """One build's pinned references; `warn` hears of a reference that could not be pinned
    (the nodes then resolve it themselves, as a one-machine build would)."""

    def __init__(
        self, resolve: Resolve = registry_digest, warn: Callable[[str], None] | None = None
    ) -> None:
        self._resolve = resolve
        self._warn = warn
        self._pins: dict[str, asyncio.Task[str]] = {}

    async def pin(self, ref: str) -> str:
        """`ref` as `name:tag@sha256:...`, the same answer for every caller of this build; ""
        when it cannot be resolved here."""
        if ref not in self._pins:
            self._pins[ref] = asyncio.ensure_future(self._pin(ref))
        return await asyncio.shield(self._pins[ref])

    async def _pin(self, text: str) -> str:
        try:
            ref = parse(text)
            if ref.digest is not None:
                return str(ref)
            digest = await self._resolve(ref)
        except PolybuildError as exc:
            if self._warn is not None:
                self._warn(f"FROM {text}: not resolved on this machine, so each node "
                           f"resolves it itself: {exc.message}")  # fmt: skip
            return ""
        return str(Reference(ref.domain, ref.path, ref.tag, digest))
