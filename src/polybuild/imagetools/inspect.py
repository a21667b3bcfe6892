"""`imagetools inspect`: an image in a registry as buildx shows it, raw, or through a template."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored, is_attestation
from polybuild.image.reference import Reference
from polybuild.imagetools.template import render
from polybuild.platforms import Platform, format_platform
from polybuild.registry.client import RegistryClient

# buildx's default --format prints the human view.
DEFAULT_FORMAT = "{{.Manifest}}"


@dataclass(frozen=True, slots=True)
class Inspection:
    """An image as the registry has it: the top document and, for templates, the configs."""

    ref: Reference
    top: Stored[Manifest] | Stored[Index]
    configs: dict[str, Any] = field(default_factory=dict)  # platform -> config JSON

    @property
    def is_index(self) -> bool:
        return isinstance(self.top.value, Index)


async def inspect(
    client: RegistryClient, ref: Reference, *, with_configs: bool = False
) -> Inspection:
    """Fetch `ref`'s manifest or index (and, if asked, every platform's config)."""
    top = await client.get_manifest(ref)
    configs: dict[str, Any] = {}
    if with_configs:
        configs = await _configs(client, ref, top)
    return Inspection(ref, top, configs)


async def _configs(
    client: RegistryClient, ref: Reference, top: Stored[Manifest] | Stored[Index]
) -> dict[str, Any]:
    entries: list[Descriptor] = []
    if isinstance(top.value, Index):
        entries = [
            e for e in top.value.manifests if mt.is_manifest(e.media_type) and not is_attestation(e)
        ]
    else:
        entries = [top.descriptor()]

    async def config(entry: Descriptor) -> tuple[str, Any]:
        manifest = top if entry.digest == top.digest else await client.get_manifest(ref, entry)
        assert isinstance(manifest.value, Manifest)
        raw = await client.fetch_bytes(ref, manifest.value.config)
        document = json.loads(raw)
        platform = entry.platform or Platform(
            document.get("os", ""), document.get("architecture", ""), document.get("variant", "")
        )
        return format_platform(platform), document

    results = await asyncio.gather(*(config(e) for e in entries))
    return dict(results)


def _block(rows: list[tuple[str, str]], indent: str) -> list[str]:
    width = max(len(label) for label, _ in rows) + 2
    return [f"{indent}{(label + ':').ljust(width)}{value}".rstrip() for label, value in rows]


def human(inspection: Inspection) -> str:
    """Name, MediaType, Digest, then each manifest's Name, MediaType and Platform (buildx)."""
    top = inspection.top
    name = inspection.ref.with_digest(None) if inspection.ref.tag else inspection.ref
    lines = _block(
        [("Name", str(name)), ("MediaType", top.media_type), ("Digest", str(top.digest))], ""
    )
    if isinstance(top.value, Index):
        lines += ["", "Manifests:"]
        for n, entry in enumerate(top.value.manifests):
            rows = [
                (
                    "Name",
                    f"{inspection.ref.with_digest(None).name}"
                    f"{':' + inspection.ref.tag if inspection.ref.tag else ''}"
                    f"@{entry.digest}",
                ),
                ("MediaType", entry.media_type),
            ]
            if entry.platform is not None:
                rows.append(("Platform", format_platform(entry.platform)))
            annotations = sorted(entry.annotations.items())
            if annotations:
                rows.append(("Annotations", ""))
            if n:
                lines.append("")
            lines += _block(rows, "  ")
            if annotations:
                lines += _block(list(annotations), "    ")
    return "\n".join(lines)


def template_data(inspection: Inspection) -> dict[str, Any]:
    """What templates see: .Name, .Manifest (the JSON document), .Image (config(s))."""
    image: Any = inspection.configs
    if not inspection.is_index:
        image = next(iter(inspection.configs.values()), None)
    return {
        "Name": str(inspection.ref),
        "Manifest": json.loads(inspection.top.raw),
        "Image": image,
    }


def needs_configs(template: str) -> bool:
    return ".Image" in template


def formatted(inspection: Inspection, template: str) -> str:
    """The output for `--format` (the default shows the human view)."""
    if template.strip() == DEFAULT_FORMAT:
        return human(inspection)
    return render(template, template_data(inspection))
