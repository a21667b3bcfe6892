"""What a BuildKit node is asked to export, from the build's outputs.

A `--push` is the daemon's (as buildx asks of each node of a multi-node build): it pushes its
platforms' manifests and layers by digest to every repository the push names, and the client
fetches back only the manifests and configs and writes the index and the tags, over layers
it never downloads. The layers come back to this machine (the daemon's OCI tarball) only
when an output needs them here: `--load`, `-o type=oci|docker|tar|local`, an image output that
re-compresses layers, or `--check-reproducible`.
"""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.exporters.spec import OutputSpec, OutputType
from polybuild.imagebuild.request import BuildRequest


@dataclass(frozen=True, slots=True)
class NodeOutputs:
    """The repositories the daemon pushes to by digest, and whether the layers come back."""

    push_by_digest: tuple[str, ...]
    local_copy: bool


def _daemon_pushes(output: OutputSpec) -> bool:
    """A push whose layers are exactly what the daemon makes (no re-compression asked)."""
    return (
        output.type is OutputType.IMAGE
        and output.push
        and output.image.compression is None
        and not output.image.force_compression
    )


def _needs_layers(output: OutputSpec) -> bool:
    return not (_daemon_pushes(output) and not output.store)


def node_outputs(request: BuildRequest) -> NodeOutputs:
    """What to ask of a BuildKit node for `request`'s outputs."""
    repositories: list[str] = []
    for output in request.outputs:
        if _daemon_pushes(output):
            repositories.extend(n.name for n in output.names if n.name not in repositories)
    local = (
        not repositories
        or request.check_reproducible
        or any(_needs_layers(output) for output in request.outputs)
    )
    return NodeOutputs(tuple(repositories), local)


__all__ = ["NodeOutputs", "node_outputs"]
