"""The JSON wire shapes of descriptors, manifests, indexes and configs, in Go's field order.

Field order and omission follow the Go types Docker and BuildKit marshal (image-spec's
`specs-go/v1`, moby's `dockerspec`), so a manifest we create serialises to the bytes they
would produce. Collections are Optional because Docker's classic builder writes `null`.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

import msgspec

from polybuild.errors import ImageError

T = TypeVar("T")


class PlatformJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    architecture: str
    os: str
    os_version: str = msgspec.field(default="", name="os.version")
    os_features: list[str] | None = msgspec.field(default=None, name="os.features")
    variant: str = ""
    features: list[str] | None = None


class DescriptorJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    media_type: str = msgspec.field(name="mediaType")
    digest: str = msgspec.field(name="digest")
    size: int = msgspec.field(name="size")
    urls: list[str] | None = None
    annotations: dict[str, str] | None = None
    data: str | None = None
    platform: PlatformJSON | None = None
    artifact_type: str = msgspec.field(default="", name="artifactType")


class ManifestJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    schema_version: int = msgspec.field(name="schemaVersion")
    media_type: str = msgspec.field(default="", name="mediaType")
    artifact_type: str = msgspec.field(default="", name="artifactType")
    config: DescriptorJSON | None = None
    layers: list[DescriptorJSON] | None = None
    subject: DescriptorJSON | None = None
    annotations: dict[str, str] | None = None
    # present only in an index; decoding a document as a manifest must notice it
    manifests: list[DescriptorJSON] | None = None


class IndexJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    schema_version: int = msgspec.field(name="schemaVersion")
    media_type: str = msgspec.field(default="", name="mediaType")
    artifact_type: str = msgspec.field(default="", name="artifactType")
    manifests: list[DescriptorJSON] | None = None
    subject: DescriptorJSON | None = None
    annotations: dict[str, str] | None = None


class HealthcheckJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    test: list[str] | None = msgspec.field(default=None, name="Test")
    interval: int = msgspec.field(default=0, name="Interval")
    timeout: int = msgspec.field(default=0, name="Timeout")
    start_period: int = msgspec.field(default=0, name="StartPeriod")
    start_interval: int = msgspec.field(default=0, name="StartInterval")
    retries: int = msgspec.field(default=0, name="Retries")


class ContainerConfigJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    user: str = msgspec.field(default="", name="User")
    exposed_ports: dict[str, Any] | None = msgspec.field(default=None, name="ExposedPorts")
    env: list[str] | None = msgspec.field(default=None, name="Env")
    entrypoint: list[str] | None = msgspec.field(default=None, name="Entrypoint")
    cmd: list[str] | None = msgspec.field(default=None, name="Cmd")
    volumes: dict[str, Any] | None = msgspec.field(default=None, name="Volumes")
    working_dir: str = msgspec.field(default="", name="WorkingDir")
    labels: dict[str, str] | None = msgspec.field(default=None, name="Labels")
    stop_signal: str = msgspec.field(default="", name="StopSignal")
    args_escaped: bool = msgspec.field(default=False, name="ArgsEscaped")
    healthcheck: HealthcheckJSON | None = msgspec.field(default=None, name="Healthcheck")
    on_build: list[str] | None = msgspec.field(default=None, name="OnBuild")
    shell: list[str] | None = msgspec.field(default=None, name="Shell")


class RootFSJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    type: str
    diff_ids: list[str] | None


class HistoryJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    created: str | None = None
    created_by: str = ""
    author: str = ""
    comment: str = ""
    empty_layer: bool = False


class ImageConfigJSON(msgspec.Struct, frozen=True, omit_defaults=True):
    # BuildKit re-marshals the top level through a map, so these keys are sorted.
    architecture: str
    author: str = ""
    config: ContainerConfigJSON | None = None
    created: str | None = None
    history: list[HistoryJSON] | None = None
    inline_cache: str = msgspec.field(default="", name="moby.buildkit.cache.v0")
    os: str = ""
    os_features: list[str] | None = msgspec.field(default=None, name="os.features")
    os_version: str = msgspec.field(default="", name="os.version")
    rootfs: RootFSJSON | None = None
    variant: str = ""


class LayoutFileJSON(msgspec.Struct, frozen=True):
    image_layout_version: str = msgspec.field(name="imageLayoutVersion")


# Go's encoding/json escapes these inside strings; they never occur outside strings in JSON.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def encode(value: msgspec.Struct) -> bytes:
    """Compact JSON with Go's field order, sorted map keys and Go's HTML escaping."""
    data = msgspec.json.encode(value, order="deterministic")
    for raw, escaped in _GO_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


# msgspec builds a Struct type's decoding info on first use and, while it does, runs Python
# code (its annotation lookup) with the half-built info already attached to the class: a
# second thread decoding the same type then crashes the interpreter (SIGSEGV; seen when the
# platforms' frontends read base-image configs at once). So each type gets one Decoder, built
# under a lock; Decoder.decode itself is thread-safe.
_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}
_decoders_lock = threading.Lock()


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    decoder = _decoders.get(kind)
    if decoder is None:
        with _decoders_lock:
            decoder = _decoders.get(kind)
            if decoder is None:
                decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    return decoder


def decode(raw: bytes, kind: type[T], what: str) -> T:
    """Decode JSON into `kind`; malformed or mistyped input raises ImageError naming `what`.

    Safe from several threads at once (see `_decoder`)."""
    try:
        return _decoder(kind).decode(raw)
    except msgspec.ValidationError as exc:
        raise ImageError(f"invalid {what}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ImageError(f"invalid {what}: not valid JSON ({exc})") from None
