"""A node's build backend for the remote protocol: a client's Solve built by this machine's
own LocalDriver under its data root, with its progress events handed back as they come."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from polybuild.cache.spec import CacheType, Direction, parse_caches
from polybuild.errors import (
    ImageNotFoundError,
    InvalidReferenceError,
    RemoteError,
    UsageError,
)
from polybuild.image import ImageStore
from polybuild.image.config import parse_config
from polybuild.image.content import BlobReader
from polybuild.image.digest import Digest
from polybuild.image.reference import Reference
from polybuild.image.reference import parse as parse_reference
from polybuild.image.select import Selected
from polybuild.imagebuild.add_hosts import parse_add_hosts
from polybuild.imagebuild.base_pulls import BaseImagePuller
from polybuild.imagebuild.baseimages import Puller
from polybuild.imagebuild.driver import LocalDriver
from polybuild.imagebuild.remote_context import received_contexts
from polybuild.imagebuild.request import BuildRequest, parse_entitlements
from polybuild.imagebuild.run_limits import parse_shm_size, parse_ulimits
from polybuild.platforms import Platform, format_platform, parse
from polybuild.progress.events import Event
from polybuild.progress.writer import ProgressWriter
from polybuild.remote.messages import BuiltImage, CachedLayer, CacheRecord, Solve, SolveDone
from polybuild.remote.node_images import ImageExchange
from polybuild.runtime import Runtime
from polybuild.solver.secrets import BuildSecrets


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
    parse_entitlements(solve.entitlements)  # UsageError naming an unknown one
    if not solve.platforms:
        raise UsageError("a solve needs at least one platform")
    if solve.cache_records not in ("", "min", "max"):
        raise UsageError(f"unknown cache record mode {solve.cache_records!r}")
    cache_from = parse_caches(solve.cache_from, Direction.IMPORT)
    for spec in cache_from:
        if spec.type is not CacheType.REGISTRY:
            raise UsageError(
                f"--cache-from {spec}: an ssh node reads registry caches only (a local "
                "directory is on the client's machine)"
            )
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
        secrets=BuildSecrets(dict(solve.secrets)),
        progress="quiet",
        cache_from=cache_from,
        add_hosts=parse_add_hosts(f"{host}:{ip}" for host, ip in solve.add_hosts),
        ulimits=parse_ulimits(f"{n}={soft}:{hard}" for n, soft, hard in solve.ulimits),
        shm_size=parse_shm_size(str(solve.shm_size) if solve.shm_size else None),
        build_contexts=received_contexts(solve, context_dir),
    )


def _pinned(ref: str, answer: str) -> Reference:
    """The client's pinned reference, checked: the same repository, with a digest."""
    try:
        pinned = parse_reference(answer)
        asked = parse_reference(ref)
    except InvalidReferenceError as exc:
        raise RemoteError(f"the client pinned {ref} to an invalid reference: {exc}") from exc
    if pinned.digest is None or pinned.name != asked.name:
        raise RemoteError(f"the client pinned {ref} to another image: {answer}")
    return pinned


def _stored(store: ImageStore, pinned: Reference, platform: Platform) -> Selected | None:
    """The pinned image from this node's store when it has that digest (no registry)."""
    for text in (str(pinned), str(pinned.digest)):
        try:
            return store.select(text, platform)
        except ImageNotFoundError:
            continue
    return None


def _as_the_client_says(
    images: ImageExchange, registry: Puller, loop: asyncio.AbstractEventLoop, pull: bool
) -> Puller:
    """A puller for the frontend's threads that asks the client which image each FROM is, so
    every node of a build uses the same bytes: the client's own image (one only the client
    has, streamed here), else the digest the client resolved the reference to, used from
    this node's store or pulled by digest. When the client could not resolve it, the node
    does as a local build would (its own store unless `--pull`, else the registry)."""

    def pull_image(store: ImageStore, ref: str, platform: Platform) -> Selected:
        ask = images.fetch(ref, format_platform(platform), store.content)
        answer = asyncio.run_coroutine_threadsafe(ask, loop).result()
        if answer.image is not None:
            manifest, config = answer.image
            parsed = parse_config(config, manifest.value.config.media_type)
            return Selected(manifest.descriptor(platform), manifest, parsed)
        if answer.pinned:
            pinned = _pinned(ref, answer.pinned)
            return _stored(store, pinned, platform) or registry(store, str(pinned), platform)
        if not pull:
            with contextlib.suppress(ImageNotFoundError):
                return store.select(ref, platform)
        return registry(store, ref, platform)

    return pull_image


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
        # Every FROM goes to the puller (pull=True): the client says which image it is.
        request = dataclasses.replace(build_request(solve, context_dir, dockerfile), pull=True)
        loop = asyncio.get_running_loop()
        registry = BaseImagePuller(loop)
        puller = _as_the_client_says(images, registry, loop, solve.pull)
        driver = LocalDriver(self.runtime, puller, cache_records=solve.cache_records)
        self.runtime.cleanup_stale()
        writer = ProgressWriter(_Forward(emit))
        try:
            with self.runtime.in_use(), self.runtime.store.lease():
                built = await driver.build(request, request.platforms, writer)
        finally:
            await registry.aclose()
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
        records = tuple(
            CacheRecord(
                key,
                tuple(
                    CachedLayer(
                        x.descriptor.media_type, str(x.blob), x.descriptor.size, str(x.diff_id)
                    )
                    for x in chain
                ),
            )
            for key, chain in built.records.items()
        )
        return SolveDone(solve.id, results, built.executed, built.emulated_seconds, records)

    def in_use(self) -> contextlib.AbstractContextManager[None]:
        return self.runtime.in_use()

    def open_blob(self, digest: Digest) -> BlobReader:
        return self.runtime.store.content.open(digest)
