"""Step names as BuildKit's dockerfile2llb gives them: `[linux/arm64 build 2/4] RUN make`.

BuildKit numbers a stage's steps by its instructions: FROM an image is 1 (FROM scratch and
FROM another stage are not counted), then every RUN, COPY, ADD and WORKDIR in order; the
total is their count, and the number is right-padded to its width (`[ 2/10]`). The stage's
name is its AS name, else `stage-N`, and none at all in a one-stage file (unless a RUN --mount or
a COPY --from of an image gives the frontend a second state: `one_state`). Multi-platform
builds put the step's platform first (`linux/amd64->arm64` when built on one platform for
another).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from polybuild.dockerfile import BuildGraph, Dockerfile
from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.named import is_named_root
from polybuild.graph import ops
from polybuild.platforms import Platform, format_platform

COUNTED = (ins.Run, ins.Copy, ins.Workdir)  # ADD is a Copy
MULTI_PLATFORM = "BUILDKIT_MULTI_PLATFORM"
_STAGE_INDEX = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi takes
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")  # Go's strconv.ParseBool


def multi_platform_requested(platforms: Sequence[Platform], build_args: Mapping[str, str]) -> bool:
    """Whether steps are named with their platform, as BuildKit's frontend decides it
    (dockerui's MultiPlatformRequested): several target platforms, or the build argument
    BUILDKIT_MULTI_PLATFORM, which buildx also sets on every node of a build that several
    nodes share (build/opt.go's multiDriver), so a node's names do not depend on its share."""
    return len(platforms) > 1 or build_args.get(MULTI_PLATFORM, "") in _GO_TRUE


def _parent(op: ops.Op) -> ops.Op | None:
    if isinstance(op, ops.Exec):
        return op.rootfs
    if isinstance(op, ops.Copy):
        return op.dest_base
    if isinstance(op, ops.Mkdir):
        return op.base
    if isinstance(op, ops.Merge):
        return op.layers[0] if op.layers else None
    return None


def _label(op: ops.Op) -> str:
    if isinstance(op, ops.Mkdir):
        return f"WORKDIR {op.path}"
    description = getattr(op, "description", "")
    return str(description) or op.kind


def stage_steps(graph: BuildGraph) -> dict[int, list[ops.Op]]:
    """Each stage's own steps (not its parent stage's), in Dockerfile order, by stage index."""
    roots = {s.root.digest for s in graph.stages if s.root is not None}
    result: dict[int, list[ops.Op]] = {}
    for stage in graph.stages:
        chain: list[ops.Op] = []
        op = stage.root
        while op is not None and not isinstance(op, ops.ImageSource):
            if op is not stage.root and op.digest in roots:
                break  # the parent stage's own steps
            chain.append(op)
            if isinstance(op, ops.Merge):
                chain.extend(layer for layer in op.layers[1:] if layer is not None)
            op = _parent(op)
        result[stage.index] = [o for o in reversed(chain) if not isinstance(o, ops.Merge)]
    return result


def one_state(dockerfile: Dockerfile) -> bool:
    """Whether dockerfile2llb names the steps without a stage: one stage, and none of the
    states its dependency graph adds for a source that is no stage (every RUN --mount, of
    any type, and COPY --from of an image), which it counts before it drops the name."""
    if len(dockerfile.stages) != 1:
        return False
    for command in dockerfile.stages[0].commands:
        if isinstance(command, ins.Run) and command.mounts:
            return False
        source = command.from_ if isinstance(command, ins.Copy) and not command.is_add else ""
        if source and not _STAGE_INDEX.fullmatch(source):  # by index: the stage itself
            return False
    return True


def base_image(graph: BuildGraph, index: int) -> ops.ImageSource | None:
    """The image a stage starts from, None for scratch or another stage."""
    stage = next(s for s in graph.stages if s.index == index)
    op = stage.root
    roots = {s.root.digest for s in graph.stages if s.root is not None and s is not stage}
    while op is not None and not isinstance(op, ops.ImageSource):
        if op.digest in roots:
            return None
        op = _parent(op)
    return op


def platform_prefix(platform: Platform, target: Platform) -> str:
    """A multi-platform build's `linux/arm64 ` (`linux/amd64->arm64 ` cross-building)."""
    if platform == target:
        return f"{format_platform(platform)} "
    if platform.os != target.os:
        return f"{format_platform(platform)}->{format_platform(target)} "
    arch = "/".join(filter(None, (target.architecture, target.variant)))
    return f"{format_platform(platform)}->{arch} "


def _counter(stage_label: str, number: int, total: int, prefix: str) -> str:
    return f"[{prefix}{stage_label}{number:>{len(str(total))}}/{total}]"


def _counted(dockerfile: Dockerfile | None, index: int, steps: list[ops.Op]) -> list[int]:
    """The first line of each counted instruction of stage `index`."""
    if dockerfile is not None and index < len(dockerfile.stages):
        commands = dockerfile.stages[index].commands
        return [c.location.start for c in commands if isinstance(c, COUNTED)]
    found: list[int] = []  # no Dockerfile: one instruction per distinct location
    for n, step in enumerate(steps):
        location = getattr(step, "location", None)
        key = location[0] if location else -1 - n
        found += [] if key in found else [key]
    return found


def step_names(
    graphs: list[BuildGraph], multi_platform: bool, dockerfile: Dockerfile | None = None
) -> dict[str, str]:
    """Op digest -> display name, for every op of every stage of every platform's graph,
    the stages' base images (`[1/3] FROM REF`) included."""
    names: dict[str, str] = {}
    for graph in graphs:
        steps_by_stage = stage_steps(graph)
        target = graph.target_platform
        single = dockerfile is not None and one_state(dockerfile)
        for stage in graph.stages:
            steps = steps_by_stage[stage.index]
            base = base_image(graph, stage.index)
            counted = _counted(dockerfile, stage.index, steps)
            first = 1 if base is not None else 0
            total = first + len(counted)
            label = "" if single else f"{stage.name or f'stage-{stage.index}'} "
            if base is not None:
                # BuildKit names FROM with no target platform: never `->arch`
                prefix = f"{format_platform(base.platform)} " if multi_platform else ""
                names.setdefault(
                    base.digest, f"{_counter(label, 1, total, prefix)} FROM {base.ref}"
                )
            for n, step in enumerate(steps):
                if is_named_root(step):  # `[context NAME] load from client`, not counted
                    names.setdefault(step.digest, _label(step))
                    continue
                location = getattr(step, "location", None)
                line = location[0] if location else -1 - n
                number = first + 1 + (counted.index(line) if line in counted else n)
                prefix = platform_prefix(step.platform, target) if multi_platform else ""
                name = f"{_counter(label, number, max(total, number), prefix)} {_label(step)}"
                names.setdefault(step.digest, name)
    return names
