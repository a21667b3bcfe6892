"""Reading attestations back, as buildx's imagetools loader does, from any blob source (an
OCI layout, the local store): per image platform, the SLSA predicate of its provenance (the
first in-toto layer whose predicate type starts `https://slsa.dev/provenance/`) and its SPDX
documents; and the `{{json .Provenance}}` / `{{json .SBOM}}` values (one platform: the stub
itself; several: a map by platform). Registries are read by imagetools/loader.py."""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from polybuild.attest import gojson
from polybuild.attest.intoto import PREDICATE_SPDX
from polybuild.attest.manifests import PREDICATE_TYPE_ANNOTATION, attestations_of, image_entries
from polybuild.errors import ImageError
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, parse_manifest
from polybuild.platforms import format_platform, normalize

SLSA_PREFIX: Final = "https://slsa.dev/provenance/"
_DSSE: Final = re.compile(r"application/vnd\.in-toto\..*\+dsse")

Fetch = Callable[[Descriptor], bytes]


@dataclass(frozen=True, slots=True)
class PlatformAttestations:
    """One image's attestations: its provenance predicate (None without one) and SPDX
    documents (first is buildx's `SPDX`, the rest `AdditionalSPDXs`)."""

    platform: str
    manifest: Descriptor
    provenance: Any = None
    spdx: tuple[Any, ...] = ()


def _is_in_toto(media_type: str) -> bool:
    return media_type == mt.IN_TOTO or _DSSE.fullmatch(media_type) is not None


def _predicate(layer: Descriptor, raw: bytes) -> Any:
    try:
        if _DSSE.fullmatch(layer.media_type):
            raw = base64.b64decode(json.loads(raw)["payload"], validate=True)
        statement = json.loads(raw)
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise ImageError(f"attestation layer {layer.digest} cannot be read: {exc}") from None
    return statement.get("predicate") if isinstance(statement, dict) else None


def read_attestations(index: Index, fetch: Fetch) -> dict[str, PlatformAttestations]:
    """Every image of `index` (by normalised platform) with what its attestation manifests
    say; `fetch` returns a blob's verified bytes."""
    found: dict[str, PlatformAttestations] = {}
    for image in image_entries(index):
        if image.platform is None:
            continue
        key = format_platform(normalize(image.platform))
        provenance: Any = None
        spdx: list[Any] = []
        for entry in attestations_of(index, image.digest):
            manifest = parse_manifest(fetch(entry), entry.media_type).value
            for layer in manifest.layers:
                if not _is_in_toto(layer.media_type):
                    continue
                kind = layer.annotations.get(PREDICATE_TYPE_ANNOTATION, "")
                if kind == PREDICATE_SPDX:
                    spdx.append(_predicate(layer, fetch(layer)))
                elif kind.startswith(SLSA_PREFIX) and provenance is None:
                    provenance = _predicate(layer, fetch(layer))
        found[key] = PlatformAttestations(key, image, provenance, tuple(spdx))
    return found


def _provenance_stub(found: PlatformAttestations) -> dict[str, Any]:
    return {"SLSA": found.provenance} if found.provenance is not None else {}


def _sbom_stub(found: PlatformAttestations) -> dict[str, Any]:
    stub: dict[str, Any] = {}
    if found.spdx:
        stub["SPDX"] = found.spdx[0]
    if len(found.spdx) > 1:
        stub["AdditionalSPDXs"] = list(found.spdx[1:])
    return stub


def provenance_value(found: Mapping[str, PlatformAttestations]) -> Any:
    """`.Provenance`: `{"SLSA": predicate}` for one platform, else platform -> that for each
    platform with provenance (buildx's tplInput / tplInputs)."""
    if len(found) == 1:
        return _provenance_stub(next(iter(found.values())))
    return {p: _provenance_stub(a) for p, a in sorted(found.items()) if a.provenance is not None}


def sbom_value(found: Mapping[str, PlatformAttestations]) -> Any:
    """`.SBOM`: `{"SPDX": doc[, "AdditionalSPDXs": [...]]}` for one platform, else by
    platform for each platform with an SBOM."""
    if len(found) == 1:
        return _sbom_stub(next(iter(found.values())))
    return {p: _sbom_stub(a) for p, a in sorted(found.items()) if a.spdx}


def template_json(value: Any) -> str:
    """buildx's `json` template function: MarshalIndent of values decoded into Go maps, so
    every object's keys come out sorted."""
    return gojson.marshal_indent(value, sort_keys=True).decode()
