"""The `image` output: name the image in the local image store, and push it through a pusher."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Sequence
from typing import Protocol

from polybuild.errors import UsageError
from polybuild.exporters.assemble import AssembledImage
from polybuild.image.content import ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.layout import copy_blob
from polybuild.image.reference import Reference
from polybuild.image.store import ImageStore
from polybuild.image.walk import reachable, require_complete


class Pusher(Protocol):
    """Pushes an image whose blobs are in `content` under every ref: a function or coroutine
    function such as `polybuild.registry.push` (the image is already in its final media
    types, so `docker_media_types` only confirms them)."""

    def __call__(
        self,
        content: ContentStore,
        target: Descriptor,
        refs: Sequence[Reference],
        /,
        *,
        docker_media_types: bool,
    ) -> object: ...


def store_image(store: ImageStore, image: AssembledImage, names: Sequence[Reference]) -> None:
    """Name the image in `store` (unnamed when there are no names), copying blobs if needed.

    The caller holds `store.lease()` from before the image was assembled, so a concurrent
    garbage collection cannot take blobs that are not named yet.
    """
    if image.content.root.resolve() != store.content.root.resolve():
        found = reachable(image.content, [image.target])
        require_complete(found, "image")
        for descriptor in found.present.values():
            copy_blob(image.content, store.content, descriptor)
    if not names:
        store.add_unnamed(image.target)
    for name in names:
        store.tag(name, image.target)


def push_image(pusher: Pusher | None, image: AssembledImage, names: Sequence[Reference]) -> None:
    """Push the image under each name; UsageError when no pusher was given."""
    if pusher is None:
        raise UsageError(
            "--output: push=true was asked but this build has no registry client to push with",
            hint="push the image later with a registry-enabled polybuild, or drop push=true",
        )
    result = pusher(
        image.content, image.target, tuple(names), docker_media_types=image.docker_media_types
    )
    if inspect.isawaitable(result):
        _run_to_completion(result)


def _run_to_completion(awaitable: Awaitable[object]) -> None:
    """Run an async pusher (`polybuild.registry.push` is one) from this synchronous code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        if inspect.iscoroutine(awaitable):
            awaitable.close()  # never awaited: avoid the "never awaited" warning
        raise UsageError(
            "an async pusher was given to export() inside a running event loop",
            hint="call export() in a worker thread: await asyncio.to_thread(export, ...)",
        )

    async def wait() -> None:
        await awaitable

    asyncio.run(wait())


__all__ = ["Pusher", "push_image", "store_image"]
