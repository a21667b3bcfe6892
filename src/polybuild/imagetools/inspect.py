"""`imagetools inspect`: an image in a registry as buildx shows it, raw, or through a Go
template over the data buildx gives (template_input)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from polybuild.image.manifest import Index, Manifest, Stored
from polybuild.image.reference import Reference
from polybuild.imagetools.gotemplate import Tree, compile_template, render
from polybuild.imagetools.loader import Loaded, load
from polybuild.imagetools.template_input import template_input
from polybuild.platforms import format_platform
from polybuild.registry.client import RegistryClient

# buildx prints the human view for no --format and for exactly `{{.Manifest}}`.
DEFAULT_FORMAT = "{{.Manifest}}"
_WHOLE_MANIFEST = re.compile(r"^\{\{\s*\.Manifest\s*\}\}$")


@dataclass(frozen=True, slots=True)
class Inspection:
    """An image as the registry has it: the top document, the name as the user typed it, and
    (for templates) every platform's config and attestations."""

    ref: Reference
    top: Stored[Manifest] | Stored[Index]
    loaded: Loaded = field(default_factory=Loaded)
    name: str = ""

    @property
    def is_index(self) -> bool:
        return isinstance(self.top.value, Index)


def is_human(template: str | None) -> bool:
    """Whether a --format prints buildx's human view rather than executing the template."""
    return not template or _WHOLE_MANIFEST.match(template.strip()) is not None


def needs_attestations(template: str) -> bool:
    """SBOM and provenance are read only when a template can call them (by name)."""
    return "SBOM" in template or "Provenance" in template


async def inspect(
    client: RegistryClient,
    ref: Reference,
    *,
    with_configs: bool = False,
    attestations: bool = False,
    name: str = "",
) -> Inspection:
    """Fetch `ref`'s manifest or index (and, if asked, what templates see of each platform)."""
    top = await client.get_manifest(ref)
    loaded = Loaded()
    if with_configs or attestations:
        loaded = await load(client, ref, top, attestations=attestations)
    return Inspection(ref, top, loaded, name or str(ref))


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
            # buildx shows URLs and annotations only for entries with a platform
            annotations: list[tuple[str, str]] = []
            if entry.platform is not None:
                rows.append(("Platform", format_platform(entry.platform)))
                if entry.urls:
                    rows.append(("URLs", ", ".join(entry.urls)))
                annotations = sorted(entry.annotations.items())
            if annotations:
                rows.append(("Annotations", ""))
            if n:
                lines.append("")
            lines += _block(rows, "  ")
            if annotations:
                lines += _block(list(annotations), "    ")
    return "\n".join(lines)


def formatted(inspection: Inspection, template: str | Tree | None) -> str:
    """The output for `--format`: the human view, or the template executed (no newline added,
    as Go's template.Execute)."""
    if template is None or (isinstance(template, str) and is_human(template)):
        return human(inspection) + "\n"
    tree = compile_template(template) if isinstance(template, str) else template
    document = json.loads(inspection.top.raw)
    data = template_input(inspection.name, inspection.top, document, inspection.loaded)
    return render(tree, data)
