"""Bytes a build moved, as its steps' recorded statuses say: layer blobs pulled for FROM steps,
the build context sent, and what the exporters wrote or pushed.

What each status means (polybuild's and BuildKit's progress alike): under a FROM step, a
status whose id is a digest (`sha256:...`) is one layer blob fetched, its total the blob's
size; `transferring context:` / `transferring dockerfile:` under an `[internal] load` step
count the bytes sent. Exporter steps (`exporting to ...`) say `pushing layers` when they
push; the bytes they wrote or pushed are known only when a status carries them (a blob
status, `sending tarball` with a count): polybuild's local exporters and BuildKit's push
report none, so those totals are None (not recorded), not 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from polybuild.history.record import BuildRecord, StatusRecord, StepRecord
from polybuild.insight.step_map import parse_step_name

_DIGEST = re.compile(r"^(?:sha256|sha384|sha512):[0-9a-f]{32,}$")
_PUSHED_NAME = re.compile(r"^pushing manifest for (?P<name>\S+?)(?:@sha256:[0-9a-f]+)?$")
_SENT = ("transferring context:", "transferring dockerfile:")
_WRITTEN = ("sending tarball", "copying files", "exporting layers")


@dataclass(frozen=True, slots=True)
class Transfers:
    """The bytes a build moved; None where its record carries no count."""

    pulled_bytes: int
    pulled_blobs: int
    context_bytes: int
    pushed_bytes: int | None
    pushed_to: tuple[str, ...]  # the names pushed (`registry/app:1`)
    exported_bytes: int | None


def _size(status: StatusRecord) -> int:
    return max(status.total, status.current, 0)


def _is_from(step: StepRecord) -> bool:
    name = parse_step_name(step.name)
    return name is not None and name.text.startswith("FROM ")


def _is_export(step: StepRecord) -> bool:
    return step.name.startswith("exporting to ") or step.vertex.startswith("export:")


def transfers(record: BuildRecord) -> Transfers:
    """The totals of `record`'s statuses (a blob counted once per step that fetched it)."""
    pulled = blobs = sent = 0
    pushed: int | None = None
    exported: int | None = None
    names: list[str] = []
    for step in record.steps:
        if _is_from(step):
            seen: set[str] = set()
            for status in step.statuses:
                if _DIGEST.match(status.id) and status.id not in seen:
                    seen.add(status.id)
                    pulled += _size(status)
                    blobs += 1
            continue
        if not _is_export(step):
            sent += sum(_size(s) for s in step.statuses if s.id.startswith(_SENT))
            continue
        pushing = any(s.id == "pushing layers" for s in step.statuses)
        for status in step.statuses:
            match = _PUSHED_NAME.match(status.id)
            if match is not None and match["name"] not in names:
                names.append(match["name"])
            counted = _DIGEST.match(status.id) or status.id.startswith(_WRITTEN)
            if not counted or _size(status) == 0:
                continue
            if pushing and _DIGEST.match(status.id):
                pushed = (pushed or 0) + _size(status)
            else:
                exported = (exported or 0) + _size(status)
    return Transfers(pulled, blobs, sent, pushed, tuple(names), exported)


__all__ = ["Transfers", "transfers"]
