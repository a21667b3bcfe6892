"""Base images pulled for a build: on the build's event loop, each (ref, platform) once, all
through one registry client, and started early when the frontend knows a stage needs it."""

from __future__ import annotations

import asyncio
from typing import Any

from polybuild.image import ImageStore
from polybuild.image.select import Selected
from polybuild.platforms import Platform


class BaseImagePuller:
    """Pulls base images for the frontend's worker threads on the build's event loop.

    Each (ref, platform) is pulled once however many platforms' frontends ask for it at the
    same time, all through one registry client (one `/v2/` ping, one connection pool and one
    token per registry for the whole build), made on the first pull and closed by `aclose`.
    `start` begins a pull without waiting for it: the frontend calls it for every needed
    stage's base before it converts the first stage, so a later stage's base (the image of
    `FROM alpine` after a `FROM --platform=$BUILDPLATFORM` stage) is fetched meanwhile.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pulls: dict[tuple[str, Platform], asyncio.Future[Selected]] = {}
        self._client: Any = None  # a RegistryClient once something is pulled

    def _task(self, store: ImageStore, ref: str, platform: Platform) -> asyncio.Future[Selected]:
        # Imported only when a base image must be pulled (httpx is slow to import).
        from polybuild.registry import resolve_base_image
        from polybuild.registry.client import RegistryClient

        if self._client is None:
            self._client = RegistryClient()
        key = (ref, platform)
        if key not in self._pulls:
            self._pulls[key] = asyncio.ensure_future(
                resolve_base_image(store, ref, platform, client=self._client)
            )
        return self._pulls[key]

    async def _shared(self, store: ImageStore, ref: str, platform: Platform) -> Selected:
        return await asyncio.shield(self._task(store, ref, platform))

    async def _begin(self, store: ImageStore, ref: str, platform: Platform) -> None:
        self._task(store, ref, platform)

    def __call__(self, store: ImageStore, ref: str, platform: Platform) -> Selected:
        """The selected variant, pulled (or joined to a pull under way); from a thread."""
        future = asyncio.run_coroutine_threadsafe(self._shared(store, ref, platform), self._loop)
        return future.result()

    def start(self, store: ImageStore, ref: str, platform: Platform) -> None:
        """Begin pulling, from a thread, without waiting; a failure is reported to whoever
        then asks for the image, and to nobody if no one does (a stage never converted)."""
        asyncio.run_coroutine_threadsafe(self._begin(store, ref, platform), self._loop).result()

    async def aclose(self) -> None:
        """Stop pulls nobody waits for and close the client (the build has ended or failed)."""
        for task in self._pulls.values():
            if not task.done():
                task.cancel()
        await asyncio.gather(*self._pulls.values(), return_exceptions=True)
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


__all__ = ["BaseImagePuller"]
