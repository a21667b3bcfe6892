"""The data buildx gives `imagetools inspect --format` templates, in Go's shapes: .Name (as
typed), .Manifest (the resolved descriptor, or the index with its digest and size), .Image
(the *v1.Image config, or a platform map when there are several) and the .SBOM and
.Provenance methods (stubs, or maps of them per platform)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from polybuild.image.manifest import Index, Manifest, Stored
from polybuild.imagetools.gotemplate import Field, GoMap, Nil, Struct, Time, from_json
from polybuild.imagetools.loader import Asset, Loaded

_NIL_STRINGS = Nil("[]string")
_NIL_ANNOTATIONS = Nil("map[string]string")
_TIME = re.compile(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def _time(value: Any) -> Time | None:
    """A time.Time as encoding/json writes it back (RFC 3339, fraction without trailing 0s)."""
    if not isinstance(value, str):
        return None
    match = _TIME.match(value)
    if match is None:
        return Time(value)
    fraction = (match.group(2) or "").rstrip("0")
    return Time(match.group(1) + ("." + fraction if fraction else "") + match.group(3))


def _strings(value: Any) -> Any:
    return [str(v) for v in value] if isinstance(value, list) else _NIL_STRINGS


def _string_map(value: Any, type_name: str = "map[string]string") -> Any:
    if not isinstance(value, Mapping):
        return Nil(type_name)
    return GoMap({str(k): str(v) for k, v in value.items()}, type_name, "")


def _set(value: Any) -> Any:
    """A map[string]struct{} (ExposedPorts, Volumes)."""
    if not isinstance(value, Mapping):
        return Nil("map[string]struct {}")
    empty = Struct("struct {}", ())
    return GoMap(dict.fromkeys(map(str, value), empty), "map[string]struct {}", empty)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def platform(wire: Mapping[str, Any], *, pointer: bool = False) -> Struct:
    """A v1.Platform (embedded in v1.Image, a *v1.Platform in a descriptor)."""
    return Struct(
        "v1.Platform",
        (
            Field("Architecture", _str(wire.get("architecture")), "architecture"),
            Field("OS", _str(wire.get("os")), "os"),
            Field("OSVersion", _str(wire.get("os.version")), "os.version", True),
            Field("OSFeatures", _strings(wire.get("os.features")), "os.features", True),
            Field("Variant", _str(wire.get("variant")), "variant", True),
        ),
        pointer=pointer,
    )


def descriptor(wire: Mapping[str, Any]) -> Struct:
    """A v1.Descriptor from its JSON."""
    data = wire.get("data")
    found_platform = wire.get("platform")
    return Struct(
        "v1.Descriptor",
        (
            Field("MediaType", _str(wire.get("mediaType")), "mediaType"),
            Field("Digest", _str(wire.get("digest")), "digest"),
            Field("Size", _int(wire.get("size")), "size"),
            Field("URLs", _strings(wire.get("urls")), "urls", True),
            Field("Annotations", _string_map(wire.get("annotations")), "annotations", True),
            Field("Data", data.encode() if isinstance(data, str) else Nil("[]uint8"), "data", True),
            Field(
                "Platform",
                platform(found_platform, pointer=True)
                if isinstance(found_platform, Mapping)
                else None,
                "platform",
                True,
            ),
            Field("ArtifactType", _str(wire.get("artifactType")), "artifactType", True),
        ),
    )


def _history(wire: Any) -> Any:
    if not isinstance(wire, list):
        return Nil("[]v1.History")
    return [
        Struct(
            "v1.History",
            (
                Field("Created", _time(h.get("created")), "created", True),
                Field("CreatedBy", _str(h.get("created_by")), "created_by", True),
                Field("Author", _str(h.get("author")), "author", True),
                Field("Comment", _str(h.get("comment")), "comment", True),
                Field("EmptyLayer", h.get("empty_layer") is True, "empty_layer", True),
            ),
        )
        for h in wire
        if isinstance(h, Mapping)
    ]


def image(config: Mapping[str, Any]) -> Struct:
    """A *v1.Image: the fields OCI's Image has, in its order (others, e.g. Docker's
    container_config or Healthcheck, are dropped as Go's json.Unmarshal drops them)."""
    inner = config.get("config")
    inner = inner if isinstance(inner, Mapping) else {}
    rootfs = config.get("rootfs")
    rootfs = rootfs if isinstance(rootfs, Mapping) else {}
    image_config = Struct(
        "v1.ImageConfig",
        (
            Field("User", _str(inner.get("User")), "User", True),
            Field("ExposedPorts", _set(inner.get("ExposedPorts")), "ExposedPorts", True),
            Field("Env", _strings(inner.get("Env")), "Env", True),
            Field("Entrypoint", _strings(inner.get("Entrypoint")), "Entrypoint", True),
            Field("Cmd", _strings(inner.get("Cmd")), "Cmd", True),
            Field("Volumes", _set(inner.get("Volumes")), "Volumes", True),
            Field("WorkingDir", _str(inner.get("WorkingDir")), "WorkingDir", True),
            Field("Labels", _string_map(inner.get("Labels")), "Labels", True),
            Field("StopSignal", _str(inner.get("StopSignal")), "StopSignal", True),
            Field("ArgsEscaped", inner.get("ArgsEscaped") is True, "ArgsEscaped", True),
        ),
    )
    diff_ids = rootfs.get("diff_ids")
    return Struct(
        "v1.Image",
        (
            Field("Created", _time(config.get("created")), "created", True),
            Field("Author", _str(config.get("author")), "author", True),
            Field("Platform", platform(config), embedded=True),
            Field("Config", image_config, "config", True),
            Field(
                "RootFS",
                Struct(
                    "v1.RootFS",
                    (
                        Field("Type", _str(rootfs.get("type")), "type"),
                        Field("DiffIDs", _strings(diff_ids), "diff_ids"),
                    ),
                ),
                "rootfs",
            ),
            Field("History", _history(config.get("history")), "history", True),
        ),
        pointer=True,
    )


def manifest_value(top: Stored[Manifest] | Stored[Index], document: Mapping[str, Any]) -> Struct:
    """.Manifest: the descriptor the registry resolved for a manifest; for an index, its
    schemaVersion, mediaType (the document's), digest, size, manifests and annotations."""
    resolved = {"mediaType": top.media_type, "digest": str(top.digest), "size": len(top.raw)}
    if isinstance(top.value, Manifest):
        return descriptor(resolved)
    manifests = document.get("manifests")
    return Struct(
        "struct { SchemaVersion int; MediaType string; Digest digest.Digest; Size int64; "
        "Manifests []v1.Descriptor; Annotations map[string]string }",
        (
            Field("SchemaVersion", _int(document.get("schemaVersion")), "schemaVersion"),
            Field("MediaType", _str(document.get("mediaType")), "mediaType", True),
            Field("Digest", str(top.digest), "digest"),
            Field("Size", len(top.raw), "size"),
            Field(
                "Manifests",
                [descriptor(m) for m in manifests if isinstance(m, Mapping)]
                if isinstance(manifests, list)
                else Nil("[]v1.Descriptor"),
                "manifests",
            ),
            Field("Annotations", _string_map(document.get("annotations")), "annotations", True),
        ),
    )


def _sbom(asset: Asset | None) -> Struct:
    spdx = asset.spdx if asset is not None else ()
    return Struct(
        "imagetools.sbomStub",
        (
            Field("SPDX", from_json(spdx[0]) if spdx else None, "SPDX", True),
            Field(
                "AdditionalSPDXs",
                [from_json(s) for s in spdx[1:]] if len(spdx) > 1 else Nil("[]interface {}"),
                "AdditionalSPDXs",
                True,
            ),
        ),
    )


def _provenance(asset: Asset | None) -> Struct:
    found = asset.provenance if asset is not None else ()
    return Struct(
        "imagetools.provenanceStub",
        (Field("SLSA", from_json(found[0]) if found else None, "SLSA", True),),
    )


def template_input(
    name: str, top: Stored[Manifest] | Stored[Index], document: Mapping[str, Any], loaded: Loaded
) -> Struct:
    """buildx's tplInput (one platform) or tplInputs (several): fields Name, Manifest, Image
    and the methods SBOM and Provenance."""
    fields_of = (
        Field("Name", name, "name", True),
        Field("Manifest", manifest_value(top, document), "manifest", True),
    )
    assets = loaded.assets
    if len(assets) > 1:
        images = {p: image(a.config) if a.config is not None else None for p, a in assets.items()}
        sbom = {p: _sbom(a) for p, a in assets.items() if a.spdx}
        provenance = {p: _provenance(a) for p, a in assets.items() if a.provenance}
        return Struct(
            "imagetools.tplInputs",
            (
                *fields_of,
                Field("Image", GoMap(images, "map[string]*v1.Image", None), "image", True),
            ),
            methods={
                "SBOM": lambda: GoMap(sbom, "map[string]imagetools.sbomStub", _sbom(None)),
                "Provenance": lambda: GoMap(
                    provenance, "map[string]imagetools.provenanceStub", _provenance(None)
                ),
            },
        )
    asset = next(iter(assets.values()), None)
    config = image(asset.config) if asset is not None and asset.config is not None else None
    return Struct(
        "imagetools.tplInput",
        (*fields_of, Field("Image", config, "image", True)),
        methods={"SBOM": lambda: _sbom(asset), "Provenance": lambda: _provenance(asset)},
    )
