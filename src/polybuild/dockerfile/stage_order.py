"""The order of a Dockerfile's stages: which stages a target needs, and the error for a stage
that uses itself or one defined after it (BuildKit's rules)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from polybuild.dockerfile.stages import Stage
from polybuild.dockerfile.syntax import Location
from polybuild.errors import DockerfileError

# Each stage's index -> the stages it uses, each with the location that uses it.
Dependencies = dict[int, list[tuple[int, Location]]]
# (message, location, hint) -> the error to raise, located in the Dockerfile.
ErrorAt = Callable[[str, Location, str], DockerfileError]


def check_order(stages: Sequence[Stage], deps: Dependencies, error: ErrorAt) -> None:
    """A DockerfileError for the first stage that uses itself or a later stage."""
    for stage in stages:
        for dep, location in deps[stage.index]:
            if dep >= stage.index:
                other = stages[dep]
                kind = (
                    "circular dependency detected on stage"
                    if leads_to(deps, dep, stage.index)
                    else "stage needs a stage defined after it"
                )
                raise error(
                    f"{kind}: {stage.display_name} (line {location.start}) uses "
                    f"{other.display_name} (defined on line {other.location.start})",
                    location,
                    f"move stage {other.display_name} before line {stage.location.start}",
                )


def leads_to(deps: Dependencies, start: int, goal: int) -> bool:
    """Whether stage `start` uses stage `goal`, directly or through others."""
    seen: set[int] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(dep for dep, _ in deps[node])
    return False


def needed_stages(target: int, deps: Dependencies, count: int, everything: bool) -> set[int]:
    """The stages `target` needs (itself included); every one of `count` when `everything`."""
    if everything:
        return set(range(count))
    needed: set[int] = set()
    todo = [target]
    while todo:
        index = todo.pop()
        if index not in needed:
            needed.add(index)
            todo.extend(dep for dep, _ in deps[index])
    return needed


__all__ = ["Dependencies", "check_order", "leads_to", "needed_stages"]
