"""Step names as BuildKit shows them: `[linux/arm64 build 2/4] RUN make`."""

from __future__ import annotations

from polybuild.dockerfile import BuildGraph
from polybuild.graph import ops
from polybuild.platforms import format_platform


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


def step_names(graphs: list[BuildGraph], multi_platform: bool) -> dict[str, str]:
    """Op digest -> display name, for every op of every stage of every platform's graph."""
    names: dict[str, str] = {}
    for graph in graphs:
        steps_by_stage = stage_steps(graph)
        target = graph.target_platform
        for stage in graph.stages:
            steps = steps_by_stage[stage.index]
            total = len(steps) + 1
            stage_name = stage.name or f"stage-{stage.index}"
            for number, step in enumerate(steps, start=2):
                prefix = f"{format_platform(step.platform)} " if multi_platform else ""
                if multi_platform and step.platform != target:
                    # BuildKit's cross-compilation form: built on one platform for another
                    arch = "/".join(filter(None, (target.architecture, target.variant)))
                    prefix = f"{format_platform(step.platform)}->{arch} "
                names.setdefault(
                    step.digest, f"[{prefix}{stage_name} {number}/{total}] {_label(step)}"
                )
    return names
