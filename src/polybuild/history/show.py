"""How `history ls` and `history inspect` print records: what buildx's ls formatter sees of
a record (its columns and JSON lines; cli/history.py runs the formatter), its inspect text
(Go tabwriter layout) and inspect JSON, with polybuild's extra fields."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from polybuild.history.record import CANCELED, ERROR, BuildRecord, StepRecord

_NAME_WIDTH = 36  # buildx trims NAME cells to this, keeping the end
_ERROR_LOG_LINES = 16  # buildx shows a failed step's last 16 lines


def format_duration(seconds: float) -> str:
    """buildx's formatDuration: 4.2s under a minute, else `3m 7s` (seconds width 2)."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m {int(seconds) % 60:2d}s"


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, as docker prints `CREATED AT`."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def rfc3339(timestamp: float, *, local: bool = False) -> str:
    """Go's RFC3339Nano: fraction without trailing zeros, `Z` for UTC."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    if local:
        moment = moment.astimezone()
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    offset = moment.strftime("%z")
    zone = "Z" if offset in ("+0000", "") else f"{offset[:3]}:{offset[3:]}"
    return text + (f".{fraction}" if fraction else "") + zone


def ls_status(record: BuildRecord) -> str:
    """buildx's STATUS column: a canceled build has an error, so it shows as Error."""
    return "Error" if record.status in (ERROR, CANCELED) else "Completed"


def _trim(name: str, width: int = _NAME_WIDTH) -> str:
    return name if len(name) <= width else ".." + name[len(name) - width + 2 :]


def full_ref(record: BuildRecord) -> str:
    return f"{record.builder}/{record.node_name}/{record.ref}"


LS_HEADERS = {
    "Ref": "BUILD ID",
    "Name": "NAME",
    "Status": "STATUS",
    "CreatedAt": "CREATED AT",
    "Duration": "DURATION",
    "Link": "",
}


def ls_fields(record: BuildRecord, now: float, *, trunc: bool = True) -> dict[str, str]:
    """What an `ls --format` template sees of a record (buildx's lsContext; no Docker
    Desktop, so no link); `trunc` (tables) shortens the name to its last 36 characters."""
    return {
        "Ref": record.ref,
        "Name": _trim(record.name) if trunc else record.name,
        "Status": ls_status(record),
        "CreatedAt": human_duration(max(now - record.started, 0.0)) + " ago",
        "Duration": format_duration(record.duration),
        "Link": "",
        "FullRef": full_ref(record),
    }


def ls_json(record: BuildRecord) -> str:
    """One `history ls --format json` line, keys as buildx's (sorted, as Go's maps; <, >
    and & escaped, as json.Marshal writes them)."""
    fields: dict[str, Any] = {
        "cached_steps": record.cached_steps,
        "completed_at": rfc3339(record.completed),
        "completed_steps": record.completed_steps,
        "created_at": rfc3339(record.started),
        "name": record.name,
        "ref": full_ref(record),
        "status": ls_status(record),
        "total_steps": len(record.steps),
    }
    text = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text


def _tabbed(rows: Sequence[tuple[str, str]]) -> list[str]:
    """Go's tabwriter(minwidth 1, tabwidth 8, padding 1, padchar '\\t'), two columns."""
    if not rows:
        return []
    cell = max(len(key) + 1 for key, _ in rows)
    cell = (cell + 7) // 8 * 8
    return [key + "\t" * ((cell - len(key) + 7) // 8) + value for key, value in rows]


def shown_paths(record: BuildRecord, cwd: str) -> tuple[str, str]:
    """Context and Dockerfile as buildx shows them: the Dockerfile relative to the context
    and the context relative to `cwd`, each only when it does not climb out with `../`."""
    context, dockerfile = record.context, record.dockerfile
    if dockerfile not in ("", "-") and context.startswith("/"):
        relative = os.path.relpath(dockerfile, context)
        if not relative.startswith("../"):
            dockerfile = relative
    if context.startswith("/"):
        relative = os.path.relpath(context, cwd)
        if not relative.startswith("../"):
            context = relative
    return context, dockerfile


def _key_values(title: str, values: Mapping[str, str]) -> list[str]:
    if not values:
        return []
    rows = [(title.upper(), "VALUE"), *sorted(values.items())]
    return [*_tabbed(rows), ""]


def _prefixed(options: Mapping[str, str], prefix: str) -> dict[str, str]:
    return {k.removeprefix(prefix): v for k, v in options.items() if k.startswith(prefix)}


def failed_step(record: BuildRecord) -> StepRecord | None:
    """The step whose error failed the build (the first that failed, not canceled)."""
    return next((s for s in record.steps if s.error and not s.canceled), None)


def step_lines(step: StepRecord, limit: int = _ERROR_LOG_LINES) -> list[str]:
    """A step's last `limit` non-empty output lines."""
    text = b"".join(chunk.data for chunk in step.logs).decode(errors="replace")
    return [line for line in text.split("\n") if line][-limit:]


def _config(record: BuildRecord) -> dict[str, Any]:
    options = record.options
    config: dict[str, Any] = {}
    if options.get("force-network-mode"):
        config["Network"] = options["force-network-mode"]
    if options.get("image-resolve-mode"):
        config["ImageResolveMode"] = options["image-resolve-mode"]
    if "no-cache" in options:
        if options["no-cache"]:
            config["NoCacheFilter"] = options["no-cache"].split(",")
        else:
            config["NoCache"] = True
    epoch = options.get("build-arg:SOURCE_DATE_EPOCH", "")
    if epoch:
        config["SourceDateEpoch"] = epoch
    return config


def inspect_json(record: BuildRecord, cwd: str = "/") -> dict[str, Any]:
    """buildx's inspect JSON (its field names), then polybuild's: builder, nodes, image,
    outputs, secret ids, steps (without logs) and warnings, for reports built on it."""
    out: dict[str, Any] = {"Name": record.name, "Ref": record.ref}
    context, dockerfile = shown_paths(record, cwd)
    for key, value in (
        ("Context", context),
        ("Dockerfile", dockerfile),
        ("Target", record.target),
    ):
        if value:
            out[key] = value
    if record.platforms:
        out["Platform"] = list(record.platforms)
    out["StartedAt"] = rfc3339(record.started, local=True)
    out["CompletedAt"] = rfc3339(record.completed, local=True)
    out["Duration"] = round(record.duration * 1e9)
    out["Status"] = {ERROR: "failed"}.get(record.status, record.status)
    if record.status in (ERROR, CANCELED):
        error: dict[str, Any] = {"Code": 1 if record.status == CANCELED else 2}
        error["Message"] = record.error
        step = failed_step(record)
        if step is not None:
            error["Name"] = step.name
            error["Logs"] = step_lines(step)
        out["Error"] = error
    out["NumCompletedSteps"] = record.completed_steps
    out["NumTotalSteps"] = len(record.steps)
    out["NumCachedSteps"] = record.cached_steps
    for key, prefix in (("BuildArgs", "build-arg:"), ("Labels", "label:")):
        values = _prefixed(record.options, prefix)
        if values:
            out[key] = [{"Name": k, "Value": v} for k, v in sorted(values.items())]
    out["Config"] = _config(record)
    out["Builder"] = record.builder
    out["Nodes"] = [{"Label": n.label, "Platforms": list(n.platforms)} for n in record.nodes]
    if record.image_digest:
        out["Image"] = record.image_digest
    out["Outputs"] = list(record.outputs)
    out["Secrets"] = list(record.secrets)
    out["SSH"] = list(record.ssh)
    out["Steps"] = [_step_json(s) for s in record.steps]
    out["Warnings"] = [w.message for w in record.warnings]
    return out


def _step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "Vertex": step.vertex,
        "Name": step.name,
        "Platform": step.platform,
        "Node": step.node,
        "StartedAt": step.started,
        "CompletedAt": step.completed,
        "Cached": step.cached,
        "Emulated": step.emulated,
        "Error": step.error,
        "Canceled": step.canceled,
        "Inputs": list(step.inputs),
        "LogBytes": sum(len(c.data) for c in step.logs) + step.clipped,
    }


def inspect_text(record: BuildRecord, *, show_ref: bool, cwd: str = "/") -> str:
    """buildx's `history inspect` text."""
    head: list[tuple[str, str]] = [("Name:", record.name)] if record.name else []
    if show_ref:
        head.append(("Ref:", record.ref))
    context, dockerfile = shown_paths(record, cwd)
    for key, value in (
        ("Context:", context),
        ("Dockerfile:", dockerfile),
        ("Target:", record.target),
    ):
        if value:
            head.append((key, value))
    if record.platforms:
        head.append(("Platforms:", ", ".join(record.platforms)))
    lines = [*_tabbed(head), ""]
    lines += _key_values("Named Context", _prefixed(record.options, "context:"))
    started = datetime.fromtimestamp(record.started).strftime("%Y-%m-%d %H:%M:%S")
    timing: list[tuple[str, str]] = [
        ("Started:", started),
        ("Duration:", format_duration(record.duration)),
    ]
    if record.status == ERROR:
        first_line = record.error.partition("\n")[0]
        timing.append(("Error:", f"Unknown {first_line}"))
    elif record.status == CANCELED:
        timing.append(("Status:", "Canceled"))
    total = len(record.steps)
    share = f"{record.cached_steps / total * 100:.0f}" if total else "NaN"
    timing.append(("Build Steps:", f"{record.completed_steps}/{total} ({share}% cached)"))
    if record.image_digest:
        timing.append(("Image:", record.image_digest))
    lines += [*_tabbed(timing), ""]
    config = _config(record)
    block: list[tuple[str, str]] = []
    if "Network" in config:
        block.append(("Network:", config["Network"]))
    if "ImageResolveMode" in config:
        block.append(("Image Resolve Mode:", config["ImageResolveMode"]))
    if config.get("NoCache"):
        block.append(("No Cache:", "true"))
    if "NoCacheFilter" in config:
        block.append(("No Cache Filter:", ", ".join(config["NoCacheFilter"])))
    if "SourceDateEpoch" in config:
        block.append(("Source Date Epoch:", config["SourceDateEpoch"]))
    lines += [*_tabbed(block), ""]
    lines += _key_values("Build Arg", _prefixed(record.options, "build-arg:"))
    lines += _key_values("Label", _prefixed(record.options, "label:"))
    step = failed_step(record) if record.status == ERROR else None
    if step is not None and step.logs:
        lines += ["Logs:", f"> => {step.name}:", *(f"> {line}" for line in step_lines(step)), ""]
    lines.append(f"Print build logs: polybuild history logs {record.ref}")
    return "\n".join(lines) + "\n"


__all__ = [
    "LS_HEADERS",
    "failed_step",
    "format_duration",
    "full_ref",
    "human_duration",
    "inspect_json",
    "inspect_text",
    "ls_fields",
    "ls_json",
    "ls_status",
    "rfc3339",
    "step_lines",
]
