"""What buildx's imagetools loader reads for templates: every platform image under a manifest
or (nested) index with its config, and the SBOM and provenance predicates of its attestation
manifests (in-toto layers, DSSE envelopes decoded)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored
from polybuild.image.reference import Reference
from polybuild.platforms import Platform, format_platform, normalize
from polybuild.registry.client import RegistryClient

_REFERENCE_ANNOTATIONS = ("com.docker.reference.digest", mt.ANNOTATION_DOCKER_REFERENCE_DIGEST)
_DSSE = re.compile(r"application/vnd\.in-toto\..*\+dsse")
_PREDICATE_TYPE = "in-toto.io/predicate-type"
SPDX = "https://spdx.dev/Document"
SLSA_PREFIX = "https://slsa.dev/provenance/"


@dataclass(frozen=True, slots=True)
class Asset:
    """One platform image: its config JSON, SPDX predicates (first is the SBOM), the SLSA
    predicate of its provenance (none or one); `attested`: an attestation manifest refers to it."""

    config: dict[str, Any] | None
    spdx: tuple[Any, ...] = ()
    provenance: tuple[Any, ...] = ()  # the SLSA predicate, when there is one
    attested: bool = False


@dataclass(frozen=True, slots=True)
class Loaded:
    """Every platform (as containerd formats it, sorted) with its asset."""

    assets: dict[str, Asset] = field(default_factory=dict)

    @property
    def platforms(self) -> list[str]:
        return sorted(self.assets)


@dataclass(slots=True)
class _Walk:
    manifests: dict[str, tuple[Descriptor, Manifest]] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)  # platform -> manifest digest
    refs: dict[str, list[str]] = field(default_factory=dict)  # subject -> attestation digests
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # manifest digest -> config


async def _config(client: RegistryClient, ref: Reference, manifest: Manifest) -> dict[str, Any]:
    raw = await client.fetch_bytes(ref, manifest.config)
    try:
        document = json.loads(raw)
    except ValueError as exc:
        raise ImageError(f"config {manifest.config.digest} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ImageError(f"config {manifest.config.digest} is not a JSON object")
    return document


async def _walk(
    client: RegistryClient, ref: Reference, stored: Stored[Manifest] | Stored[Index], walk: _Walk
) -> None:
    value = stored.value
    if isinstance(value, Index):
        tasks = []
        for entry in value.manifests:
            if mt.is_manifest(entry.media_type) or mt.is_index(entry.media_type):
                tasks.append(_entry(client, ref, entry, walk))
        await asyncio.gather(*tasks)


async def _entry(client: RegistryClient, ref: Reference, entry: Descriptor, walk: _Walk) -> None:
    stored = await client.get_manifest(ref, entry)
    if isinstance(stored.value, Index):
        await _walk(client, ref, stored, walk)
        return
    await _manifest(client, ref, entry, stored.value, walk)


async def _manifest(
    client: RegistryClient, ref: Reference, entry: Descriptor, manifest: Manifest, walk: _Walk
) -> None:
    digest = str(entry.digest)
    walk.manifests[digest] = (entry, manifest)
    for key in _REFERENCE_ANNOTATIONS:
        subject = entry.annotations.get(key)
        if subject is not None:
            walk.refs.setdefault(subject, []).append(digest)
            return
    config = await _config(client, ref, manifest)
    walk.configs[digest] = config
    platform = entry.platform or Platform(
        str(config.get("os", "")),
        str(config.get("architecture", "")),
        str(config.get("variant", "")),
    )
    walk.images[format_platform(normalize(platform))] = digest


def _is_in_toto(media_type: str) -> bool:
    return media_type == mt.IN_TOTO or _DSSE.fullmatch(media_type) is not None


async def _predicate(client: RegistryClient, ref: Reference, layer: Descriptor) -> Any:
    raw = await client.fetch_bytes(ref, layer)
    try:
        if _DSSE.fullmatch(layer.media_type):
            raw = base64.b64decode(json.loads(raw)["payload"], validate=True)
        statement = json.loads(raw)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ImageError(f"attestation layer {layer.digest} cannot be read: {exc}") from None
    return statement.get("predicate") if isinstance(statement, dict) else None


async def _attestations(
    client: RegistryClient, ref: Reference, walk: _Walk, digest: str
) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    spdx: list[Any] = []
    provenance: tuple[Any, ...] = ()
    for attestation in walk.refs.get(digest, []):
        _, manifest = walk.manifests[attestation]
        layers = [x for x in manifest.layers if _is_in_toto(x.media_type)]
        # As buildx: every SPDX layer, and the first SLSA layer of each manifest (two scans:
        # an SBOM after the provenance in a manifest still counts).
        for layer in layers:
            if layer.annotations.get(_PREDICATE_TYPE, "") == SPDX:
                spdx.append(await _predicate(client, ref, layer))
        for layer in layers:
            if layer.annotations.get(_PREDICATE_TYPE, "").startswith(SLSA_PREFIX):
                provenance = (await _predicate(client, ref, layer),)
                break
    return tuple(spdx), provenance


async def load(
    client: RegistryClient,
    ref: Reference,
    top: Stored[Manifest] | Stored[Index],
    *,
    attestations: bool = False,
) -> Loaded:
    """Walk `top` as buildx's loader does; `attestations` also reads SBOM and provenance."""
    walk = _Walk()
    if isinstance(top.value, Index):
        await _walk(client, ref, top, walk)
    else:
        await _manifest(client, ref, top.descriptor(), top.value, walk)
    assets: dict[str, Asset] = {}
    for platform, digest in walk.images.items():
        spdx: tuple[Any, ...] = ()
        provenance: tuple[Any, ...] = ()
        if attestations:
            spdx, provenance = await _attestations(client, ref, walk, digest)
        assets[platform] = Asset(walk.configs[digest], spdx, provenance, digest in walk.refs)
    return Loaded(assets)
