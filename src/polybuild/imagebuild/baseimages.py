"""Base images for FROM: found in the local store (or pulled), one variant per platform."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from dataclasses import dataclass, field

from polybuild.errors import ImageNotFoundError, PolybuildError
from polybuild.graph.config import HealthConfig, HistoryEntry
from polybuild.graph.config import ImageConfig as GraphConfig
from polybuild.image import ImageStore
from polybuild.image.config import ImageConfig
from polybuild.image.select import NoMatchingPlatformError, Selected
from polybuild.platforms import Platform, format_platform
from polybuild.solver.results import LayerRef
from polybuild.solver.scheduler import BaseImage

# (store, reference, platform) -> selected variant, fetching it from a registry into the store.
Puller = Callable[[ImageStore, str, Platform], Selected]


def _epoch(created: str | None) -> int | None:
    if not created:
        return None
    try:
        moment = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp())


def graph_config(config: ImageConfig, platform: Platform) -> GraphConfig:
    """The frontend's view of a base image's config (what a stage starts from)."""
    c = config.config
    health = c.healthcheck
    return GraphConfig(
        platform=platform,
        env=tuple(c.env),
        cmd=tuple(c.cmd) if c.cmd else None,
        entrypoint=tuple(c.entrypoint) if c.entrypoint else None,
        working_dir=c.working_dir,
        user=c.user,
        labels=tuple(sorted(c.labels.items())),
        exposed_ports=tuple(c.exposed_ports),
        volumes=tuple(c.volumes),
        stop_signal=c.stop_signal,
        healthcheck=HealthConfig(**dataclasses.asdict(health)) if health else None,
        shell=tuple(c.shell),
        on_build=tuple(c.on_build),
        author=config.author,
        history=tuple(
            HistoryEntry(h.created_by, h.empty_layer, h.comment, _epoch(h.created))
            for h in config.history
        ),
    )


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
    _configs: dict[tuple[str, Platform], GraphConfig] = field(default_factory=dict)

    def __call__(self, ref: str, platform: Platform) -> GraphConfig:
        key = (ref, platform)
        if key not in self._configs:
            selected = self._select(ref, platform)
            layers = tuple(
                LayerRef(layer.digest, diff_id, layer.size, layer.media_type)
                for layer, diff_id in zip(
                    selected.manifest.value.layers, selected.config.value.diff_ids, strict=True
                )
            )
            self.resolved[key] = BaseImage(layers, selected.descriptor.digest)
            self._configs[key] = graph_config(selected.config.value, platform)
        return self._configs[key]

    def _select(self, ref: str, platform: Platform) -> Selected:
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
