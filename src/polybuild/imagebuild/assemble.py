"""One platform's image: the solved layer chain plus the frontend's config, as stored blobs."""

from __future__ import annotations

import dataclasses
import datetime
import time

from polybuild.exporters.assemble import PlatformImage
from polybuild.graph.config import ImageConfig as GraphConfig
from polybuild.image import ContentStore, Descriptor
from polybuild.image.config import (
    ContainerConfig,
    Healthcheck,
    History,
    ImageConfig,
    encode_config,
)
from polybuild.image.manifest import Manifest, encode_manifest
from polybuild.platforms import Platform
from polybuild.solver.results import Chain


def rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_config(
    graph: GraphConfig, chain: Chain, platform: Platform, source_date_epoch: int | None
) -> ImageConfig:
    """The OCI image config for `graph`'s settings over `chain`'s layers."""
    now = source_date_epoch if source_date_epoch is not None else int(time.time())
    health = graph.healthcheck
    return ImageConfig(
        architecture=platform.architecture,
        os=platform.os,
        variant=platform.variant,
        created=rfc3339(now),
        author=graph.author,
        config=ContainerConfig(
            user=graph.user,
            exposed_ports=tuple(graph.exposed_ports),
            env=tuple(graph.env),
            entrypoint=tuple(graph.entrypoint or ()),
            cmd=tuple(graph.cmd or ()),
            volumes=tuple(graph.volumes),
            working_dir=graph.working_dir,
            labels=dict(graph.labels),
            stop_signal=graph.stop_signal,
            healthcheck=Healthcheck(**dataclasses.asdict(health)) if health else None,
            on_build=tuple(graph.on_build),
            shell=tuple(graph.shell),
        ),
        diff_ids=tuple(layer.diff_id for layer in chain.layers),
        history=tuple(
            History(
                created=rfc3339(h.created if h.created is not None else now),
                created_by=h.created_by,
                comment=h.comment,
                empty_layer=h.empty_layer,
            )
            for h in graph.history
        ),
    )


def store_platform_image(
    content: ContentStore,
    graph: GraphConfig,
    chain: Chain,
    platform: Platform,
    source_date_epoch: int | None,
) -> PlatformImage:
    """Write `platform`'s config and manifest into `content` (layers are already there)."""
    config = encode_config(image_config(graph, chain, platform, source_date_epoch))
    content.put(config.raw, config.digest)
    layers = tuple(Descriptor(x.media_type, x.blob, x.size) for x in chain.layers)
    manifest = encode_manifest(Manifest(config=config.descriptor(), layers=layers))
    content.put(manifest.raw, manifest.digest)
    return PlatformImage(platform, manifest, config)
