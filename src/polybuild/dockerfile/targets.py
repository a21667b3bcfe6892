"""`--call targets`: the Dockerfile's stages as BuildKit's frontend lists them (name, the doc
comment `# NAME description` right above the FROM, base, platform, location; the last stage
is the default), in buildx's text (a tabwriter table) or JSON (Go's MarshalIndent of the
list, the Dockerfile base64 in `sources`)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from polybuild.dockerfile.syntax import ParseResult


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    default: bool
    description: str
    base: str
    platform: str
    start_line: int
    end_line: int


def doc_comment(comments: tuple[str, ...], name: str) -> str:
    """BuildKit's getDocComment: the first comment line that starts with `NAME `."""
    if not name:
        return ""
    for line in comments:
        if line.startswith(name + " "):
            return line[len(name) + 1 :]
    return ""


def list_targets(parsed: ParseResult) -> list[Target]:
    froms = [node for node in parsed.nodes if node.keyword == "from"]
    targets = []
    for index, node in enumerate(froms):
        args = list(node.args)
        name = args[2].lower() if len(args) == 3 and args[1].lower() == "as" else ""
        platform = next((f.split("=", 1)[1] for f in node.flags if f.startswith("--platform=")), "")
        targets.append(
            Target(
                name,
                index == len(froms) - 1,
                doc_comment(node.comments, name),
                args[0] if args else "",
                platform,
                node.location.start,
                node.location.end,
            )
        )
    return targets


def render_text(targets: list[Target]) -> str:
    """buildx's table: TARGET and DESCRIPTION, columns padded by one space (tabwriter)."""
    rows = [("TARGET", "DESCRIPTION")]
    for t in targets:
        name = t.name
        if not name and t.default:
            name = "(default)"
        elif t.default:
            name = f"{name} (default)"
        rows.append((name, t.description))
    width = max(len(r[0]) for r in rows) + 1
    return "".join(f"{r[0].ljust(width)}{r[1]}\n" for r in rows)


def render_json(targets: list[Target], source: bytes) -> str:
    """The frontend's result.json: {"targets": [...], "sources": [base64]}, indented as Go."""
    items = []
    for t in targets:
        item: dict[str, object] = {}
        if t.name:
            item["name"] = t.name
        if t.default:
            item["default"] = True
        if t.description:
            item["description"] = t.description
        if t.base:
            item["base"] = t.base
        if t.platform:
            item["platform"] = t.platform
        item["location"] = {
            "ranges": [{"start": {"line": t.start_line}, "end": {"line": t.end_line}}]
        }
        items.append(item)
    document = {"targets": items, "sources": [base64.b64encode(source).decode()]}
    return json.dumps(document, indent=2)


__all__ = ["Target", "doc_comment", "list_targets", "render_json", "render_text"]
