"""What a BuildKit node is asked to export, from the build's outputs.

A `--push` is the daemon's (as buildx asks of each node of a multi-node build): it pushes its
platforms' manifests and layers by digest to every repository the push names, and the client
fetches back only the manifests and configs and writes the index and the tags, over layers
it never downloads. The layers come back to this machine (the daemon's OCI tarball) only
when an output needs them here: `--load`, `-o type=oci|docker|tar|local`, an image output that
re-compresses layers, or `--check-reproducible`.

When one BuildKit node builds every platform, the daemon writes the outputs it can itself
(`daemon_outputs`), as buildx's remote driver has it do: `-o type=oci|docker|tar` to a file or
stdout and `--push`, each with the user's options in BuildKit's attribute names, and no
round trip through this machine's store. `--load`, `-o type=local`, `--check-reproducible`,
a multi-platform docker archive (BuildKit refuses one) or `platform-split=false` over several
platforms (polybuild refuses it) keep the store's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from polybuild.exporters.spec import Annotation, AnnotationTarget, OutputSpec, OutputType
from polybuild.imagebuild.request import BuildRequest
from polybuild.layers import Compression
from polybuild.platforms import format_platform


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


@dataclass(frozen=True, slots=True)
class DaemonOutput:
    """One output the daemon writes itself: its exporter, attributes (BuildKit's names) and
    where the file it sends goes (a path, "-" for stdout; None: nothing comes back)."""

    type: str
    attrs: Mapping[str, str]
    dest: str | None


_COMPRESSION = {
    Compression.GZIP: "gzip",
    Compression.ZSTD: "zstd",
    Compression.NONE: "uncompressed",
}


def _annotation_key(annotation: Annotation) -> str:
    """`annotation-TYPE[PLATFORM].KEY`, the syntax BuildKit's exporters parse (and buildx's)."""
    key = "annotation"
    if annotation.target is not AnnotationTarget.MANIFEST or annotation.platform is not None:
        key += f"-{annotation.target}"
    if annotation.platform is not None:
        key += f"[{format_platform(annotation.platform)}]"
    return f"{key}.{annotation.key}"


def _image_attrs(output: OutputSpec, request: BuildRequest) -> dict[str, str]:
    """An image output's options as the oci, docker and image exporters take them."""
    options = output.image
    attrs = {"oci-mediatypes": str(options.oci_mediatypes).lower()}
    if output.names:
        attrs["name"] = ",".join(str(name) for name in output.names)
    if options.compression is not None:
        attrs["compression"] = _COMPRESSION[options.compression]
    if options.compression_level is not None:
        attrs["compression-level"] = str(options.compression_level)
    if options.force_compression:
        attrs["force-compression"] = "true"
    for annotation in options.annotations:
        attrs[_annotation_key(annotation)] = annotation.value
    if request.source_date_epoch is not None:
        attrs["rewrite-timestamp"] = "true"  # polybuild's own layers clamp file times too
    return attrs


def _daemon_output(output: OutputSpec, request: BuildRequest) -> DaemonOutput | None:
    several = len(request.platforms) > 1
    if output.type is OutputType.IMAGE:
        if output.store or not output.push:
            return None  # --load: this machine's store
        return DaemonOutput("image", {**_image_attrs(output, request), "push": "true"}, None)
    if output.type in (OutputType.OCI, OutputType.DOCKER):
        if output.dest is None or (output.type is OutputType.DOCKER and several):
            return None  # the image store; BuildKit's docker archive holds one platform
        return DaemonOutput(str(output.type), _image_attrs(output, request), output.dest)
    if output.type is OutputType.TAR:
        if output.platform_split is None:
            return DaemonOutput("tar", {}, output.dest)
        if not output.platform_split and several:
            return None  # polybuild refuses to merge platforms; BuildKit would
        split = str(output.platform_split).lower()
        return DaemonOutput("tar", {"platform-split": split}, output.dest)
    return None


def daemon_outputs(request: BuildRequest) -> tuple[DaemonOutput, ...] | None:
    """Every output of `request` as the daemon's own exporters write it, or None when one
    of them needs this machine's store (then `node_outputs` says what to ask)."""
    if request.check_reproducible:
        return None
    found = []
    for output in request.outputs:
        daemon = _daemon_output(output, request)
        if daemon is None:
            return None
        found.append(daemon)
    return tuple(found)


__all__ = ["DaemonOutput", "NodeOutputs", "daemon_outputs", "node_outputs"]
