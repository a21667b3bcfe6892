"""The `image` output: name the image in the local image store (and, for `--load`, load it
into a running Docker Engine), and push it through a pusher."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence

from polybuild.errors import UsageError
from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.base import ExportContext, Pusher
from polybuild.exporters.docker_engine import detect_engine, load_into_engine
from polybuild.exporters.spec import OutputSpec
from polybuild.image.layout import copy_blob
from polybuild.image.reference import Reference
from polybuild.image.store import ImageStore
from polybuild.image.walk import reachable, require_complete


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


async def push_image(
    pusher: Pusher | None, image: AssembledImage, names: Sequence[Reference]
) -> None:
    """Push the image under each name; UsageError when no pusher was given.

    A plain function pusher runs in a worker thread; a coroutine function's coroutine is
    awaited on the build's own event loop (never a loop of its own).
    """
    if pusher is None:
        raise UsageError(
            "--output: push=true was asked but this build has no registry client to push with",
            hint="push the image later with a registry-enabled polybuild, or drop push=true",
        )
    result = await asyncio.to_thread(
        pusher,
        image.content,
        image.target,
        tuple(names),
        docker_media_types=image.docker_media_types,
    )
    if inspect.isawaitable(result):
        await result


class ImageExporter:
    """`type=image` (and `type=registry`): name the image in the local store, load it into a
    Docker Engine (`--load`), push it."""

    def check(self, output: OutputSpec, context: ExportContext) -> None:
        if output.store and context.store is None:
            raise UsageError(f"--output: type={output.type} needs the local image store")
        if output.push and context.pusher is None:
            raise UsageError(
                "--output: push=true was asked but this build has no registry client to push with"
            )
        if output.load:
            detect_engine()  # DOCKER_HOST unreachable: fail before building

    async def export(
        self, output: OutputSpec, image: AssembledImage, context: ExportContext
    ) -> str | None:
        warning = None
        if output.store:
            assert context.store is not None  # check()
            await asyncio.to_thread(store_image, context.store, image, output.names)
        if output.load:
            loaded = await asyncio.to_thread(load_into_engine, image, output.names)
            warning = loaded.warning if loaded is not None else None
        if output.push:
            await push_image(context.pusher, image, output.names)
        return warning


__all__ = ["ImageExporter", "Pusher", "push_image", "store_image"]
