"""`--call outline` printed as buildx prints it: the text of BuildKit's outline.PrintOutline
(tabwriter tables: TARGET/DESCRIPTION, BUILD ARG/VALUE/DESCRIPTION, SECRET/REQUIRED,
SSH/REQUIRED, each followed by an empty line) or, with format=json, the frontend's
result.json (Go's json.MarshalIndent of the Outline, the Dockerfile base64 in `sources`)."""

from __future__ import annotations

import base64
import json

from polybuild.dockerfile.outline import Outline, OutlineArg, OutlineMount
from polybuild.dockerfile.syntax import Location
from polybuild.tabwriter import tabwriter

# What Go's encoding/json escapes that Python's json (ensure_ascii=False) writes as it is.
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026",
               "\u2028": "\\u2028", "\u2029": "\\u2029"}  # fmt: skip


def render_text(outline: Outline) -> str:
    """outline.PrintOutline's text."""
    out = []
    rows: list[tuple[str, ...]]
    if outline.name or outline.description:
        rows = [("TARGET:", outline.name or "(default)")]
        if outline.description:
            rows.append(("DESCRIPTION:", outline.description))
        out.append(tabwriter(rows, 1) + "\n")
    if outline.args:
        rows = [("BUILD ARG", "VALUE", "DESCRIPTION")]
        rows += [(a.name, a.value, a.description) for a in outline.args]
        out.append(tabwriter(rows, 3) + "\n")
    for title, mounts in (("SECRET", outline.secrets), ("SSH", outline.ssh)):
        if mounts:
            rows = [(title, "REQUIRED")]
            rows += [(m.name, "true" if m.required else "") for m in mounts]
            out.append(tabwriter(rows, 3) + "\n")
    return "".join(out)


def go_json(document: object) -> str:
    """json.MarshalIndent(document, "", "  ") as Go writes it (UTF-8 kept; <, >, & and the
    line and paragraph separators escaped)."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return "".join(_GO_ESCAPES.get(char, char) for char in text)


def _location(location: Location | None) -> dict[str, object]:
    if location is None:
        return {}
    return {"location": {"ranges": [{"start": {"line": location.start},
                                     "end": {"line": location.end}}]}}  # fmt: skip


def _arg(arg: OutlineArg) -> dict[str, object]:
    item: dict[str, object] = {"name": arg.name}
    if arg.description:
        item["description"] = arg.description
    if arg.value:
        item["value"] = arg.value
    return item | _location(arg.location)


def _mount(mount: OutlineMount) -> dict[str, object]:
    item: dict[str, object] = {"name": mount.name}
    if mount.required:
        item["required"] = True
    return item | _location(mount.location)


def render_json(outline: Outline) -> str:
    """The frontend's result.json (fields in the Outline struct's order, empty ones left out)."""
    document: dict[str, object] = {}
    if outline.name:
        document["name"] = outline.name
    if outline.description:
        document["description"] = outline.description
    if outline.args:
        document["args"] = [_arg(a) for a in outline.args]
    if outline.secrets:
        document["secrets"] = [_mount(m) for m in outline.secrets]
    if outline.ssh:
        document["ssh"] = [_mount(m) for m in outline.ssh]
    document["sources"] = [base64.b64encode(outline.source).decode()]
    return go_json(document)


__all__ = ["go_json", "render_json", "render_text"]
