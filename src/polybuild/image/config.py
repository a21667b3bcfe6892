"""The image config (platform, container defaults, rootfs diff IDs, history) as typed values.

One model for every use: parsed from a base image, updated by the Dockerfile frontend
(dataclasses.replace on `config`), finished by image.writer and encoded here.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image._wire import (
    ContainerConfigJSON,
    HealthcheckJSON,
    HistoryJSON,
    ImageConfigJSON,
    RootFSJSON,
    decode,
    encode,
)
from polybuild.image.digest import Digest, InvalidDigestError
from polybuild.image.manifest import Stored
from polybuild.platforms import Platform


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """HEALTHCHECK settings; durations are in nanoseconds as Docker stores them."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class ContainerConfig:
    """The defaults a container of this image runs with (the `config` object Docker uses)."""

    user: str = ""
    exposed_ports: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    working_dir: str = ""
    labels: Mapping[str, str] = field(default_factory=dict, hash=False)
    stop_signal: str = ""
    args_escaped: bool = False
    healthcheck: Healthcheck | None = None
    on_build: tuple[str, ...] = ()
    shell: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # A read-only copy: the config is a value, whoever built the mapping may change theirs.
        object.__setattr__(self, "labels", MappingProxyType(dict(self.labels)))

    def env_value(self, key: str) -> str | None:
        """The value `Env` gives `key` (the first `key=` entry), None when it sets none."""
        for item in self.env:
            name, _, value = item.partition("=")
            if name == key:
                return value
        return None


@dataclass(frozen=True, slots=True)
class History:
    """One history entry; `empty_layer` entries have no layer in rootfs."""

    created: str | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """An image config: what platform it runs on, how to run it, and its layers' diff IDs."""

    architecture: str
    os: str
    variant: str = ""
    os_version: str = ""
    os_features: tuple[str, ...] = ()
    created: str | None = None
    author: str = ""
    config: ContainerConfig = field(default_factory=ContainerConfig)
    diff_ids: tuple[Digest, ...] = ()
    history: tuple[History, ...] = ()
    inline_cache: str = ""  # BuildKit's inline build cache (base64 of a cache config)

    @property
    def platform(self) -> Platform:
        return Platform(self.os, self.architecture, self.variant)

    @classmethod
    def empty(cls, platform: Platform) -> ImageConfig:
        """The config of `FROM scratch` for `platform`: nothing set."""
        return cls(architecture=platform.architecture, os=platform.os, variant=platform.variant)

    def with_platform(self, platform: Platform) -> ImageConfig:
        """A copy for `platform` (os.version and os.features are the base's: dropped)."""
        return replace(
            self,
            architecture=platform.architecture,
            os=platform.os,
            variant=platform.variant,
            os_version="",
            os_features=(),
        )


def rfc3339(epoch: int) -> str:
    """A `created` timestamp as Docker and BuildKit write it: UTC, whole seconds."""
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_of(created: str | None) -> int | None:
    """Seconds since the epoch of a `created` timestamp; None when absent or unreadable."""
    if not created:
        return None
    try:
        moment = datetime.datetime.fromisoformat(created.replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp())


def _container_from_wire(wire: ContainerConfigJSON) -> ContainerConfig:
    health = wire.healthcheck
    return ContainerConfig(
        user=wire.user,
        exposed_ports=tuple(sorted(wire.exposed_ports or {})),
        env=tuple(wire.env or ()),
        entrypoint=tuple(wire.entrypoint or ()),
        cmd=tuple(wire.cmd or ()),
        volumes=tuple(sorted(wire.volumes or {})),
        working_dir=wire.working_dir,
        labels=dict(wire.labels or {}),
        stop_signal=wire.stop_signal,
        args_escaped=wire.args_escaped,
        healthcheck=Healthcheck(
            tuple(health.test or ()),
            health.interval,
            health.timeout,
            health.start_period,
            health.start_interval,
            health.retries,
        )
        if health
        else None,
        on_build=tuple(wire.on_build or ()),
        shell=tuple(wire.shell or ()),
    )


def _container_to_wire(config: ContainerConfig) -> ContainerConfigJSON:
    health = config.healthcheck
    return ContainerConfigJSON(
        user=config.user,
        exposed_ports={port: {} for port in config.exposed_ports} or None,
        env=list(config.env) or None,
        entrypoint=list(config.entrypoint) or None,
        cmd=list(config.cmd) or None,
        volumes={volume: {} for volume in config.volumes} or None,
        working_dir=config.working_dir,
        labels=dict(config.labels) or None,
        stop_signal=config.stop_signal,
        args_escaped=config.args_escaped,
        healthcheck=HealthcheckJSON(
            list(health.test) or None,
            health.interval,
            health.timeout,
            health.start_period,
            health.start_interval,
            health.retries,
        )
        if health
        else None,
        on_build=list(config.on_build) or None,
        shell=list(config.shell) or None,
    )


def parse_config(raw: bytes, media_type: str = mt.OCI_CONFIG) -> Stored[ImageConfig]:
    """Parse an image config blob; ImageError names the field that is wrong."""
    wire = decode(raw, ImageConfigJSON, "image config")
    if not wire.architecture or not wire.os:
        raise ImageError("invalid image config: `architecture` and `os` are required")
    raw_diff_ids = (wire.rootfs.diff_ids if wire.rootfs else None) or []
    try:
        diff_ids = tuple(Digest.parse(d) for d in raw_diff_ids)
    except InvalidDigestError as exc:
        raise ImageError(f"invalid image config: rootfs.diff_ids: {exc}") from None
    config = ImageConfig(
        architecture=wire.architecture,
        os=wire.os,
        variant=wire.variant,
        os_version=wire.os_version,
        os_features=tuple(wire.os_features or ()),
        created=wire.created,
        author=wire.author,
        config=_container_from_wire(wire.config or ContainerConfigJSON()),
        diff_ids=diff_ids,
        history=tuple(
            History(h.created, h.created_by, h.author, h.comment, h.empty_layer)
            for h in wire.history or ()
        ),
        inline_cache=wire.inline_cache,
    )
    return Stored(config, raw, media_type, Digest.of(raw))


def encode_config(config: ImageConfig, media_type: str = mt.OCI_CONFIG) -> Stored[ImageConfig]:
    """Serialise a new image config as BuildKit does (sorted top level, Go order inside)."""
    wire = ImageConfigJSON(
        architecture=config.architecture,
        author=config.author,
        config=_container_to_wire(config.config),
        created=config.created,
        history=[
            HistoryJSON(h.created, h.created_by, h.author, h.comment, h.empty_layer)
            for h in config.history
        ]
        or None,
        inline_cache=config.inline_cache,
        os=config.os,
        os_features=list(config.os_features) or None,
        os_version=config.os_version,
        rootfs=RootFSJSON(type="layers", diff_ids=[str(d) for d in config.diff_ids]),
        variant=config.variant,
    )
    raw = encode(wire)
    return Stored(config, raw, media_type, Digest.of(raw))
