"""Base images for FROM: found in the local store (or pulled), one variant per platform."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from polybuild.errors import ImageNotFoundError, PolybuildError
from polybuild.graph.ops import ImageSource
from polybuild.image import Descriptor, ImageStore
from polybuild.image.config import ImageConfig
from polybuild.image.digest import Digest
from polybuild.image.layer import Layer
from polybuild.image.select import NoMatchingPlatformError, Selected, select_manifest
from polybuild.platforms import Platform, format_platform
from polybuild.solver.scheduler import BaseImage

# (store, reference, platform) -> selected variant, fetching it from a registry into the store.
Puller = Callable[[ImageStore, str, Platform], Selected]
# (store, reference, platform): begin fetching that, without waiting.
Prefetcher = Callable[[ImageStore, str, Platform], None]


@dataclass(frozen=True, slots=True)
class UsedImage:
    """A base image a platform's build used: the reference as the frontend normalised it, the
    platform asked of it, and the digest the reference resolved to (an index's for a
    multi-platform image, as BuildKit's provenance records it)."""

    ref: str
    platform: Platform
    digest: Digest


@dataclass
class BaseImageResolver:
    """The frontend's ImageResolver: records each (ref, platform) it resolves for the solver.

    `pull` means ask the registry even when the store has the image (`--pull`); without a
    puller only the local store is used.
    """

    store: ImageStore
    puller: Puller | None = None
    pull: bool = False
    resolved: dict[tuple[str, Platform], BaseImage] = field(default_factory=dict)
    # Images in the store's content by the reference the frontend knows them by, looked up
    # before the store and any registry (--build-context NAME=oci-layout://...)
    layouts: Mapping[str, Descriptor] = field(default_factory=dict)
    prefetcher: Prefetcher | None = None
    # What each reference resolved to: the index (or manifest) its name pointed at.
    targets: dict[str, Digest] = field(default_factory=dict)
    _configs: dict[tuple[str, Platform], ImageConfig] = field(default_factory=dict)

    def __call__(self, ref: str, platform: Platform) -> ImageConfig:
        key = (ref, platform)
        if key not in self._configs:
            selected = self._select(ref, platform)
            if ref not in self.targets:
                self.targets[ref] = self._target(ref, selected)
            # A built image lists its base's layers by media type, digest and size only.
            layers = tuple(
                Layer(Descriptor(layer.media_type, layer.digest, layer.size), diff_id)
                for layer, diff_id in zip(
                    selected.manifest.value.layers, selected.config.value.diff_ids, strict=True
                )
            )
            self.resolved[key] = BaseImage(layers, selected.descriptor.digest)
            # The stage's layers are the solver's chain; the writer lists their diff-ids.
            config = selected.config.value.with_platform(platform)
            self._configs[key] = replace(config, diff_ids=())
        return self._configs[key]

    def _target(self, ref: str, selected: Selected) -> Digest:
        if ref in self.layouts:
            return self.layouts[ref].digest
        try:
            return self.store.resolve(ref).target.digest
        except ImageNotFoundError:
            return selected.descriptor.digest

    def used(self, ops: Iterable[object]) -> tuple[UsedImage, ...]:
        """The base images among a graph's `ops`, by what their references resolved to."""
        found: list[UsedImage] = []
        for op in ops:
            if isinstance(op, ImageSource) and op.ref in self.targets:
                used = UsedImage(op.ref, op.platform, self.targets[op.ref])
                if used not in found:
                    found.append(used)
        return tuple(found)

    def prefetch(self, ref: str, platform: Platform) -> None:
        """Begin the pull that resolving (`ref`, `platform`) will need, if it will need one."""
        if self.prefetcher is None or self.puller is None or ref in self.layouts:
            return
        if (ref, platform) in self._configs:
            return
        if not self.pull:
            try:
                self.store.resolve(ref)
                return  # in the store: resolved from there (or its error told) when asked
            except ImageNotFoundError:
                pass
        self.prefetcher(self.store, ref, platform)

    def _select(self, ref: str, platform: Platform) -> Selected:
        if ref in self.layouts:
            return select_manifest(self.store.content, self.layouts[ref], platform)
        if self.pull and self.puller is not None:
            return self._pull(ref, platform)
        try:
            return self.store.select(ref, platform)
        except NoMatchingPlatformError as exc:
            available = exc.message[exc.message.find("(available") :]
            raise NoMatchingPlatformError(
                f"base image {ref} has no variant for {format_platform(platform)} {available}",
                hint="build only for the platforms the base image has, or pick another base",
            ) from exc
        except ImageNotFoundError:
            if self.puller is None:
                raise
            return self._pull(ref, platform)

    def _pull(self, ref: str, platform: Platform) -> Selected:
        assert self.puller is not None
        try:
            return self.puller(self.store, ref, platform)
        except PolybuildError as exc:
            # Say which FROM failed, as BuildKit does, whatever the registry said.
            raise type(exc)(
                f"{ref}: not in the local image store, and failed to resolve source metadata "
                f"for {format_platform(platform)}: {exc.message}",
                hint=exc.hint or "import or pull the image first (polybuild images lists them)",
            ) from exc
