"""`RemoteDriver`: a builder node reached over ssh, built on with polybuild's remote protocol.

The node builds its platforms with its own machinery (store, cache, runc); this machine
sends it the request as values and the context files it lacks, shows its progress under
the node's name, and fetches only the result blobs its own store lacks, so the exporters
work on the images as on local ones.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

from polybuild.builders import Detected, Node
from polybuild.cache.spec import CacheType
from polybuild.errors import ImageNotFoundError, NodeUnreachableError, PolybuildError, UsageError
from polybuild.image import ImageStore
from polybuild.image.config import parse_config
from polybuild.image.content import BlobReader, BlobWriter, ContentStore
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.manifest import parse_manifest
from polybuild.image.platform_image import PlatformImage
from polybuild.image.select import select_manifest
from polybuild.imagebuild.driver import NodeBuild
from polybuild.imagebuild.named_contexts import layout_images
from polybuild.imagebuild.pins import Pins
from polybuild.imagebuild.remote_context import cache_mode, make_solve
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, format_platform, parse
from polybuild.progress.events import VertexCompleted, VertexStarted
from polybuild.progress.writer import ProgressWriter
from polybuild.remote.client import Opener, bootstrap
from polybuild.remote.messages import BuiltImage, Progress, SolveDone
from polybuild.remote.process import ProcessLink
from polybuild.remote.progress_wire import from_message
from polybuild.remote.session import LocalImage, Session, open_session
from polybuild.remote.ssh import open_ssh, parse_endpoint
from polybuild.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Transfer:
    """What a remote build cost in context data: files and bytes sent to the node."""

    files: int
    bytes: int


class StoreImages:
    """How this machine answers a node's FROM: an image of its store, else the build's
    pinned digest of the reference."""

    def __init__(
        self, store: ImageStore, pins: Pins, layouts: Mapping[str, Descriptor] | None = None
    ) -> None:
        self.store = store
        self.pins = pins
        self.layouts = layouts or {}  # --build-context oci-layout:// images, by reference

    async def pin(self, ref: str) -> str:
        return await self.pins.pin(ref)

    def find(self, ref: str, platform: str) -> LocalImage | None:
        try:
            if ref in self.layouts:
                selected = select_manifest(self.store.content, self.layouts[ref], parse(platform))
            else:
                selected = self.store.select(ref, parse(platform))
        except ImageNotFoundError:
            return None
        layers = frozenset(str(layer.digest) for layer in selected.manifest.value.layers)
        return LocalImage(
            selected.manifest.raw, selected.manifest.media_type, selected.config.raw, layers
        )

    def open(self, digest: str) -> BlobReader:
        return self.store.content.open(Digest.parse(digest))


class RemoteDriver:
    """One ssh node; `pins` are the build's pinned FROM references (shared by its nodes);
    `opener` replaces the ssh transport (tests use a local child)."""

    def __init__(
        self,
        node: Node,
        runtime: Runtime,
        pins: Pins | None = None,
        opener: Opener | None = None,
    ) -> None:
        self.node = node
        self.runtime = runtime
        self.pins = pins or Pins()
        self._opener = opener
        self._detected: Detected | None = None
        self.transfers: list[Transfer] = []

    @property
    def vertex_prefix(self) -> str:
        return f"{self.node.name}/"  # as progress_wire.from_message names them

    @property
    def label(self) -> str:
        return f"{self.node.name} ({self.node.endpoint})"

    cache_format = "polybuild"

    def check(self, request: BuildRequest) -> None:
        from polybuild.cache.transfer import check_specs

        check_specs(request.cache_to, request.cache_from)
        for spec in request.cache_from:
            if spec.type is not CacheType.REGISTRY:
                raise UsageError(
                    f"--cache-from {spec}: {self.label} reads registry caches only (a local "
                    "cache directory is on this machine)",
                    hint="export the cache to a registry with --cache-to type=registry,ref=R",
                )

    def _open(self) -> Opener:
        if self._opener is not None:
            return self._opener
        endpoint = parse_endpoint(self.node.endpoint)

        options = self.node.options

        async def open_default() -> ProcessLink:
            return await open_ssh(
                endpoint, connect_timeout=options.connect_timeout, polybuild=options.polybuild
            )

        return open_default

    async def detect(self) -> Detected:
        """The node's own probe, asked once over a short session of its own."""
        if self._detected is None:
            try:
                info = await bootstrap(
                    self.node.endpoint,
                    timeout=self.node.options.connect_timeout,
                    opener=self._open(),
                )
            except NodeUnreachableError as exc:
                raise self._named(exc) from exc
            native = tuple(parse(p) for p in info.native)
            self._detected = Detected(native, tuple(parse(p) for p in info.emulated))
        return self._detected

    def _named(self, exc: NodeUnreachableError) -> NodeUnreachableError:
        return NodeUnreachableError(f"{self.node.name} ({exc.endpoint})", exc.reason, hint=exc.hint)

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        try:
            return await self._build(request, platforms, progress)
        except NodeUnreachableError as exc:
            raise self._named(exc) from exc

    async def _build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        solve, files = await asyncio.to_thread(make_solve, request, platforms, 1, self.runtime.root)
        # The plan, shown: which node builds which platforms, and where it is.
        shown = ",".join(format_platform(p) for p in platforms)
        vertex = f"connect-{self.node.name}-{solve.id}"
        name = f"[{self.node.name} {shown}] connecting to {self.node.endpoint}"
        progress.emit(VertexStarted(vertex, name, progress.clock()))
        try:
            session = await open_session(
                self.node.endpoint,
                self._open(),
                timeout=self.node.options.connect_timeout,
                label=f"[{self.node.name}]",
            )
        except NodeUnreachableError as exc:
            progress.emit(VertexCompleted(vertex, progress.clock(), error=exc.reason))
            raise
        except asyncio.CancelledError:
            progress.emit(VertexCompleted(vertex, progress.clock(), canceled=True))
            raise
        progress.emit(VertexCompleted(vertex, progress.clock()))
        finished = False
        try:

            def on_progress(message: Progress) -> None:
                event = from_message(message, self.node.name)
                if event is not None:
                    progress.emit(event)

            def on_sent(count: int, size: int) -> None:
                self.transfers.append(Transfer(count, size))
                vertex = f"context-{self.node.name}-{solve.id}"
                name = f"[{self.node.name}] context: sent {count} files ({size} bytes)"
                progress.emit(VertexStarted(vertex, name, progress.clock()))
                progress.emit(VertexCompleted(vertex, progress.clock()))

            layouts = await asyncio.to_thread(layout_images, request, self.runtime.store.content)
            images = StoreImages(self.runtime.store, self.pins, layouts)
            solved = await session.solve(solve, files, on_progress, on_sent, images)
            if len(solved.done.images) != len(platforms):
                raise NodeUnreachableError(
                    self.node.endpoint, "the node returned another number of images"
                )
            built = await _receive_images(session, self.runtime.store.content, solved.done)
            records = await _receive_records(
                session, self.runtime.store.content, solved.done, cache_mode(request) == "max"
            )
            finished = True
        finally:
            await session.close(grace=None if finished else 0)
        for image, platform in zip(built, platforms, strict=True):
            if image.platform != platform:
                raise NodeUnreachableError(
                    self.node.endpoint, f"the node built {image.platform} instead of {platform}"
                )
        return NodeBuild(built, solved.done.executed, solved.done.emulated_seconds, records)


async def _receive_images(
    session: Session, content: ContentStore, done: SolveDone
) -> tuple[PlatformImage, ...]:
    """Store each image's manifest and config, and fetch the layers this store lacks."""
    images = tuple(_stored_image(content, built) for built in done.images)
    wanted: dict[Digest, int] = {}
    for image in images:
        for layer in image.manifest.value.layers:
            if not content.exists(layer.digest):
                wanted.setdefault(layer.digest, layer.size)
    await _fetch_blobs(session, content, wanted)
    return images


async def _fetch_blobs(session: Session, content: ContentStore, wanted: dict[Digest, int]) -> None:
    """Fetch these blobs (digest -> size) from the node into `content`, each verified."""
    digests = tuple(wanted)
    writers: list[BlobWriter] = []

    def open_sink(index: int) -> BlobWriter:
        writers.append(content.writer(digests[index], wanted[digests[index]]))
        return writers[-1]

    try:
        await session.fetch(tuple(str(d) for d in digests), open_sink)
        for writer in writers:
            await asyncio.to_thread(writer.commit)  # verifies size and digest
    finally:
        for writer in writers:
            writer.abort()  # a no-op once committed


async def _receive_records(
    session: Session, content: ContentStore, done: SolveDone, every: bool
) -> dict[str, tuple[Layer, ...]]:
    """The node's cache records whose layers this store holds: with `every` (mode=max) the
    layers it lacks are fetched from the node first; else only the records whose layers came
    with the images (the results' own steps, all that mode=min exports)."""
    records: dict[str, tuple[Layer, ...]] = {}
    for record in done.records:
        try:
            records[record.key] = tuple(
                Layer(Descriptor(x.media_type, Digest.parse(x.digest), x.size),
                      Digest.parse(x.diff_id))
                for x in record.layers
            )  # fmt: skip
        except PolybuildError as exc:
            raise NodeUnreachableError(
                session.endpoint, f"the node sent an invalid cache record: {exc.message}"
            ) from None
    if every:
        wanted: dict[Digest, int] = {}
        for chain in records.values():
            for layer in chain:
                if not content.exists(layer.blob):
                    wanted.setdefault(layer.blob, layer.descriptor.size)
        await _fetch_blobs(session, content, wanted)
    return {k: c for k, c in records.items() if all(content.exists(x.blob) for x in c)}


def _stored_image(content: ContentStore, built: BuiltImage) -> PlatformImage:
    manifest = parse_manifest(built.manifest, built.manifest_media_type)
    config = parse_config(built.config, built.config_media_type)
    content.put(built.config, manifest.value.config.digest)
    content.put(built.manifest, manifest.digest)
    return PlatformImage(parse(built.platform), manifest, config)
