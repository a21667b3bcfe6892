"""The debugging view of a conversion (`polybuild build --print graph`): stages, arguments and
the graph's ops with their digests."""

from __future__ import annotations

from polybuild.dockerfile.convert import BuildGraph
from polybuild.graph import Copy, Exec, ImageSource, InlineSource, LocalSource, Merge, Mkdir, Op


def _short(digest: str) -> str:
    return digest.removeprefix("sha256:")[:12]


def _describe(op: Op) -> str:
    if isinstance(op, ImageSource):
        return f"image {op.ref}"
    if isinstance(op, LocalSource):
        excluded = f" (excluding {len(op.exclude)} patterns)" if op.exclude else ""
        return f"local {op.name}{excluded}"
    if isinstance(op, InlineSource):
        return "inline " + ", ".join(f.path for f in op.files)
    if isinstance(op, Exec):
        extra = "".join(f" [mount {m.type} {m.target}]" for m in op.mounts)
        return f"exec {op.argv!r} cwd={op.cwd}{extra}"
    if isinstance(op, Copy):
        what = "add" if op.is_add else "copy"
        return f"{what} {' '.join(op.sources or (op.url,))} -> {op.dest}"
    if isinstance(op, Mkdir):
        return f"mkdir {op.path}"
    if isinstance(op, Merge):
        return f"merge {len(op.layers)} layers"
    raise TypeError(op)


def graph_dump(graph: BuildGraph) -> str:
    """Stages, arguments and graph ops of one conversion, as text for a terminal."""
    lines = [f"target platform: {graph.target_platform}", f"build platform: {graph.build_platform}"]
    lines.append("global args:")
    lines += [f"  {key}={value}" for key, value in graph.global_args]
    lines.append("stages:")
    for stage in graph.stages:
        marker = " (target)" if stage.index == graph.target.index else ""
        name = stage.name or f"stage-{stage.index}"
        root = _short(stage.root.digest) if stage.root else "scratch"
        lines.append(
            f"  [{stage.index}] {name}{marker} FROM {stage.base} on {stage.platform}"
            f" (line {stage.location.start}) -> {root}"
        )
    lines.append("graph:")
    for op in graph.ops():
        inputs = ", ".join(_short(i.digest) if i else "scratch" for i in op.inputs())
        after = f" <- {inputs}" if inputs else ""
        lines.append(f"  {_short(op.digest)} {op.platform} {_describe(op)}{after}")
    for warning in graph.warnings:
        lines.append(f"warning: line {warning.line}: {warning.message}")
    return "\n".join(lines) + "\n"
