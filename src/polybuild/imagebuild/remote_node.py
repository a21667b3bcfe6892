"""A node's build backend for the remote protocol: a client's Solve built by this machine's
own LocalDriver under its data root, with its progress events handed back as they come."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from polybuild.errors import UsageError
from polybuild.image import ImageStore
from polybuild.image.config import parse_config
from polybuild.image.content import BlobReader
from polybuild.image.digest import Digest
from polybuild.image.select import Selected
from polybuild.imagebuild.api import _base_image_puller
from polybuild.imagebuild.baseimages import Puller
from polybuild.imagebuild.driver import LocalDriver
from polybuild.imagebuild.request import ENTITLEMENTS, BuildRequest
from polybuild.platforms import Platform, format_platform, parse
from polybuild.progress.events import Event
from polybuild.progress.writer import ProgressWriter
from polybuild.remote.messages import BuiltImage, Solve, SolveDone
from polybuild.remote.node_images import ImageExchange
from polybuild.runtime import Runtime


class _Forward:
    """A Progress sink that hands every event to the protocol's sender."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self._emit = emit

    def emit(self, event: Event) -> None:
        self._emit(event)

    def close(self) -> None:
        pass


def dockerfile_name(text: str) -> str:
    """The Dockerfile's name as errors show it: a plain file name, never a path."""
    name = PurePosixPath(text).name
    return name if name not in ("", ".", "..") else "Dockerfile"


def build_request(solve: Solve, context_dir: Path, dockerfile: Path) -> BuildRequest:
    """The node's BuildRequest for a client's Solve (values checked as the CLI checks them)."""
    if solve.network not in ("default", "host", "none"):
        raise UsageError(f"--network: unknown mode {solve.network!r}")
    unknown = set(solve.entitlements) - set(ENTITLEMENTS)
    if unknown:
        raise UsageError(f"--allow: unknown entitlement {sorted(unknown)[0]!r}")
    if not solve.platforms:
        raise UsageError("a solve needs at least one platform")
    return BuildRequest(
        context=context_dir,
        platforms=tuple(parse(p) for p in solve.platforms),
        dockerfile=dockerfile,
        build_args=dict(solve.build_args),
        target=solve.target,
        labels=dict(solve.labels),
        no_cache=solve.no_cache,
        no_cache_filter=solve.no_cache_filter,
        pull=solve.pull,
        network=solve.network,
        entitlements=frozenset(solve.entitlements),
        source_date_epoch=solve.source_date_epoch,
        progress="quiet",
    )


def _client_first(
    images: ImageExchange, registry: Puller, loop: asyncio.AbstractEventLoop
) -> Puller:
    """A puller for the frontend's threads: a base image this node lacks comes from the
    client's store when it has it (an image only the client has), else from the registry."""

    def pull(store: ImageStore, ref: str, platform: Platform) -> Selected:
        ask = images.fetch(ref, format_platform(platform), store.content)
        offered = asyncio.run_coroutine_threadsafe(ask, loop).result()
        if offered is None:
            return registry(store, ref, platform)
        manifest, config = offered
        parsed = parse_config(config, manifest.value.config.media_type)
        return Selected(manifest.descriptor(platform), manifest, parsed)

    return pull


class LocalBackend:
    """Builds on this machine, as `polybuild build` would here (its store, cache, runc)."""

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.runtime = runtime or Runtime()

    @property
    def data_root(self) -> Path:
        return self.runtime.root

    async def build(
        self,
        solve: Solve,
        context_dir: Path,
        work_dir: Path,
        emit: Callable[[Event], None],
        images: ImageExchange,
    ) -> SolveDone:
        name = dockerfile_name(solve.dockerfile_name)
        # Outside the context, with the client's .dockerignore patterns beside it, so the
        # node filters exactly as the client did (and the context holds only its files).
        dockerfile = work_dir / "dockerfile" / name
        dockerfile.parent.mkdir()
        dockerfile.write_bytes(solve.dockerfile)
        ignore = dockerfile.with_name(name + ".dockerignore")
        ignore.write_text("".join(p + "\n" for p in solve.ignore_patterns), encoding="utf-8")
        request = build_request(solve, context_dir, dockerfile)
        loop = asyncio.get_running_loop()
        registry = _base_image_puller(loop)
        puller = registry if solve.pull else _client_first(images, registry, loop)
        driver = LocalDriver(self.runtime, puller)
        self.runtime.cleanup_stale()
        writer = ProgressWriter(_Forward(emit))
        with self.runtime.in_use(), self.runtime.store.lease():
            built = await driver.build(request, request.platforms, writer)
        results = tuple(
            BuiltImage(
                format_platform(image.platform),
                image.manifest.raw,
                image.manifest.media_type,
                image.config.raw,
                image.config.media_type,
            )
            for image in built.images
        )
        return SolveDone(solve.id, results, built.executed, built.emulated_seconds)

    def open_blob(self, digest: Digest) -> BlobReader:
        return self.runtime.store.content.open(digest)
