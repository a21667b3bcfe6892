"""The image configuration a stage produces (OCI/Docker `config` plus history), as values."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.platforms import Platform


@dataclass(frozen=True, slots=True)
class HealthConfig:
    """HEALTHCHECK: `test` is ("NONE",), ("CMD", ...) or ("CMD-SHELL", cmd); durations in ns."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of `docker history`: what created it and whether it added a layer."""

    created_by: str
    empty_layer: bool
    comment: str = "buildkit.dockerfile.v0"
    created: int | None = None  # seconds since the epoch (SOURCE_DATE_EPOCH), else set on export


@dataclass(frozen=True, slots=True)
class ImageConfig:
    """What the exporter writes into the image config for one platform."""

    platform: Platform
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    user: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: HealthConfig | None = None
    shell: tuple[str, ...] = ()
    on_build: tuple[str, ...] = ()
    author: str = ""
    history: tuple[HistoryEntry, ...] = ()

    def env_value(self, key: str) -> str | None:
        for item in self.env:
            name, _, value = item.partition("=")
            if name == key:
                return value
        return None
