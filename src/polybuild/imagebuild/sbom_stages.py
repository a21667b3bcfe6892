"""Which build stages an SBOM also scans, as BuildKit's Dockerfile frontend chooses them:
every stage the target needs whose BUILDKIT_SBOM_SCAN_STAGE is `true` or names it (the
build argument, else the stage's own `ARG BUILDKIT_SBOM_SCAN_STAGE=...`, else the global
one), or every such stage with `--attest type=sbom,scan-stage=true`; the target itself is
the SBOM's core and never an extra."""

from __future__ import annotations

from collections.abc import Mapping

from polybuild.dockerfile.commands import Arg
from polybuild.dockerfile.convert import BuildGraph, StageGraph
from polybuild.dockerfile.stages import Dockerfile, Stage

SCAN_STAGE_ARG = "BUILDKIT_SBOM_SCAN_STAGE"


def enabled_for(stage: str, value: str) -> bool:
    """BuildKit's isEnabledForStage: a Go boolean, else a comma-separated list of stages."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return stage in value.split(",")


def _declared(args: tuple[Arg, ...] | list[Arg]) -> str | None:
    value = None
    for command in args:
        for arg in command.args:
            if arg.key == SCAN_STAGE_ARG and arg.default is not None:
                value = arg.default
    return value


def _value(stage: Stage, dockerfile: Dockerfile, build_args: Mapping[str, str]) -> str | None:
    if SCAN_STAGE_ARG in build_args:
        return build_args[SCAN_STAGE_ARG]
    own = _declared([c for c in stage.commands if isinstance(c, Arg)])
    return own if own is not None else _declared(dockerfile.global_args)


def scanned_stages(
    graph: BuildGraph,
    dockerfile: Dockerfile | None,
    build_args: Mapping[str, str],
    scan_stage: bool | None,
) -> tuple[StageGraph, ...]:
    """The stages of `graph` (one platform's) whose file systems an SBOM scans besides the
    target's, in Dockerfile order."""
    if dockerfile is None or scan_stage is False:
        return ()
    by_index = {stage.index: stage for stage in dockerfile.stages}
    found = []
    for converted in graph.stages:
        if converted.index == graph.target.index or converted.index not in by_index:
            continue
        stage = by_index[converted.index]
        value = "true" if scan_stage else _value(stage, dockerfile, build_args)
        if value is not None and enabled_for(stage.display_name, value):
            found.append(converted)
    return tuple(found)


__all__ = ["SCAN_STAGE_ARG", "enabled_for", "scanned_stages"]
