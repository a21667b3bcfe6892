"""`polybuild check`: verify a data root (blobs, images, unpacked layers, build cache, leftovers)
and, with `repair`, fix what can be fixed without losing anything a user made.

Run under the data root's exclusive lock (as prune), so no build or run is going on; pulls,
loads and imports may be, and are never disturbed (their files are locked or leased).
Repairs: corrupt blobs, damaged or void cache records, and leftovers are removed. Images
that miss content are reported with what to do, never deleted.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from polybuild.check.blobs import scan_blobs
from polybuild.check.buildcache import check_build_cache
from polybuild.check.images import check_images
from polybuild.check.layers import verify_unpacked
from polybuild.check.leftovers import find_leftovers
from polybuild.check.problems import Outcome, Problem
from polybuild.image.digest import Digest
from polybuild.runtime import Runtime

_LAYER_NAME = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Every problem found (with what --repair did), what was checked, and notes."""

    outcomes: tuple[Outcome, ...]
    blobs: int
    images: int
    layers: int
    cache_records: int
    notes: tuple[str, ...]

    @property
    def remaining(self) -> tuple[Outcome, ...]:
        """Problems still there: all of them without --repair, the unfixed ones with it."""
        return tuple(o for o in self.outcomes if not o.fixed)


def check_data_root(runtime: Runtime, *, repair: bool = False, deep: bool = False) -> CheckReport:
    """Check (and with `repair`, fix) the data root; refused while a build or run uses it.

    `deep` also unpacks every layer again and compares it with the layer store's copy.
    """
    with runtime.in_use(exclusive=True):
        outcomes = _settle(find_leftovers(runtime), repair)
        scan = scan_blobs(runtime.store.content)
        outcomes += _settle(scan.problems, repair)
        removed = {o.problem.subject for o in outcomes if o.fixed and o.problem.area == "blob"}
        lost: dict[Digest, str] = {
            d: "was corrupt and is removed" if str(d) in removed else "is corrupt"
            for d in scan.corrupt
        }
        images = check_images(runtime.store, scan.sizes, lost)
        outcomes += _settle(images.problems, repair)
        cache = check_build_cache(runtime.root, scan.sizes, lost)
        outcomes += _settle(cache.problems, repair)
        used = cache.used | images.used
        if deep:
            outcomes += _settle(verify_unpacked(runtime, used.layers), repair)
        layers = _layer_names(runtime.layers.root)
        wanted = {d.split(":", 1)[-1] for d in used.diff_ids}
        notes = _notes(
            unused_blobs=len(set(scan.sizes) - used.blobs),
            unused_layers=len([name for name in layers if name not in wanted]),
            partial=images.partial,
        )
        return CheckReport(
            tuple(outcomes),
            blobs=len(scan.sizes) + len(scan.corrupt),
            images=images.images,
            layers=len(layers),
            cache_records=cache.records,
            notes=notes,
        )


def _settle(problems: Iterable[Problem], repair: bool) -> list[Outcome]:
    """Repair what can be (when asked); a repair that fails leaves its problem standing."""
    outcomes = []
    for problem in problems:
        if not repair or problem.repair is None:
            outcomes.append(Outcome(problem))
            continue
        try:
            action = problem.repair()
        except OSError as exc:
            outcomes.append(Outcome(problem, f"could not repair: {exc.strerror or exc}"))
        except sqlite3.Error as exc:
            outcomes.append(Outcome(problem, f"could not repair: {exc}"))
        else:
            outcomes.append(Outcome(problem, action, fixed=True))
    return outcomes


def _layer_names(root: Path) -> list[str]:
    """The unpacked layers present (hex of their diff-ids)."""
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    return sorted(
        e.name for e in entries if _LAYER_NAME.match(e.name) and e.is_dir(follow_symlinks=False)
    )


def _notes(*, unused_blobs: int, unused_layers: int, partial: list[str]) -> tuple[str, ...]:
    notes = []
    if unused_blobs or unused_layers:
        notes.append(
            f"{unused_blobs} blobs and {unused_layers} unpacked layers are used by no image or "
            "cache record (polybuild prune frees them)"
        )
    if partial:
        notes.append(
            f"{len(partial)} images hold only some of their platforms (pulled that way, or a "
            f"variant was lost): {', '.join(partial)}"
        )
    return tuple(notes)


__all__ = ["CheckReport", "Outcome", "Problem", "check_data_root"]
