"""Writing one platform's built image: its config and manifest over layers already stored."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Protocol

from polybuild.image.config import History, ImageConfig, encode_config, epoch_of, rfc3339
from polybuild.image.content import ContentStore
from polybuild.image.layer import Layer
from polybuild.image.manifest import Manifest, encode_manifest
from polybuild.image.platform_image import PlatformImage
from polybuild.platforms import Platform


class Layers(Protocol):
    """Anything holding an image's layers, bottom first (the solver's Chain)."""

    @property
    def layers(self) -> Sequence[Layer]: ...


def built_config(
    config: ImageConfig,
    layers: Sequence[Layer],
    platform: Platform,
    source_date_epoch: int | None,
    inline_cache: str = "",
) -> ImageConfig:
    """The config the build writes for `platform`: the frontend's `config` over `layers`.

    Every `created` is SOURCE_DATE_EPOCH when set, else now, unless a history entry has
    its own (kept to the second). As the build always wrote them, history entries carry no
    author, and os.version / os.features are not copied from a base; ArgsEscaped is as the
    frontend left it (a base's, or true after CMD, as BuildKit v0.32 writes it).
    A base image's inline cache is never copied; `inline_cache` is this build's own.
    """
    now = source_date_epoch if source_date_epoch is not None else int(time.time())

    def created(entry: History) -> str:
        epoch = epoch_of(entry.created)
        return rfc3339(epoch if epoch is not None else now)

    return replace(
        config.with_platform(platform),
        created=rfc3339(now),
        diff_ids=tuple(layer.diff_id for layer in layers),
        inline_cache=inline_cache,
        history=tuple(
            History(created(h), h.created_by, comment=h.comment, empty_layer=h.empty_layer)
            for h in config.history
        ),
    )


def store_platform_image(
    content: ContentStore,
    config: ImageConfig,
    chain: Layers,
    platform: Platform,
    source_date_epoch: int | None,
    inline_cache: str = "",
) -> PlatformImage:
    """Write `platform`'s config and manifest into `content` (the layers are already there)."""
    built = built_config(config, chain.layers, platform, source_date_epoch, inline_cache)
    stored = encode_config(built)
    content.put(stored.raw, stored.digest)
    layers = tuple(layer.descriptor for layer in chain.layers)
    manifest = encode_manifest(Manifest(config=stored.descriptor(), layers=layers))
    content.put(manifest.raw, manifest.digest)
    return PlatformImage(platform, manifest, stored)
