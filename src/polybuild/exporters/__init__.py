"""Build outputs as buildx's `-o/--output`: image store, registry, OCI, docker, local dir, tar.

>>> from polybuild.exporters import parse_outputs
>>> [o.type.value for o in parse_outputs(["./out", "type=oci,dest=img.tar"], load=True)]
['local', 'oci', 'image']
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from polybuild.exporters.archive import (
        DockerArchive,
        docker_platform,
        write_docker_archive,
        write_oci_archive,
    )
    from polybuild.exporters.assemble import AssembledImage, assemble
    from polybuild.exporters.base import ExportContext, Exporter, Pusher
    from polybuild.exporters.export import (
        EXPORTERS,
        ExportResult,
        check_outputs,
        export,
        export_outputs,
    )
    from polybuild.exporters.filesystem import export_local, export_tar, platform_dir_name
    from polybuild.exporters.image_output import push_image, store_image
    from polybuild.exporters.metadata import (
        NO_OUTPUT_WARNING,
        image_id,
        metadata,
        write_iidfile,
        write_metadata_file,
    )
    from polybuild.exporters.spec import (
        Annotation,
        AnnotationTarget,
        ImageOptions,
        OutputSpec,
        OutputType,
        parse_output,
        parse_outputs,
    )

# Each name is imported from its module when first used: `polybuild.exporters.spec` (the
# `-o` parser every build needs) must not load the archive writers, layer recompression and
# the image writers behind them (0.1 s of imports) for a build whose outputs a BuildKit
# daemon writes.
_MODULES = {
    "Annotation": "polybuild.exporters.spec",
    "AnnotationTarget": "polybuild.exporters.spec",
    "AssembledImage": "polybuild.exporters.assemble",
    "DockerArchive": "polybuild.exporters.archive",
    "EXPORTERS": "polybuild.exporters.export",
    "ExportContext": "polybuild.exporters.base",
    "ExportResult": "polybuild.exporters.export",
    "Exporter": "polybuild.exporters.base",
    "ImageOptions": "polybuild.exporters.spec",
    "NO_OUTPUT_WARNING": "polybuild.exporters.metadata",
    "OutputSpec": "polybuild.exporters.spec",
    "OutputType": "polybuild.exporters.spec",
    "Pusher": "polybuild.exporters.base",
    "assemble": "polybuild.exporters.assemble",
    "check_outputs": "polybuild.exporters.export",
    "docker_platform": "polybuild.exporters.archive",
    "export": "polybuild.exporters.export",
    "export_local": "polybuild.exporters.filesystem",
    "export_outputs": "polybuild.exporters.export",
    "export_tar": "polybuild.exporters.filesystem",
    "image_id": "polybuild.exporters.metadata",
    "metadata": "polybuild.exporters.metadata",
    "parse_output": "polybuild.exporters.spec",
    "parse_outputs": "polybuild.exporters.spec",
    "platform_dir_name": "polybuild.exporters.filesystem",
    "push_image": "polybuild.exporters.image_output",
    "store_image": "polybuild.exporters.image_output",
    "write_docker_archive": "polybuild.exporters.archive",
    "write_iidfile": "polybuild.exporters.metadata",
    "write_metadata_file": "polybuild.exporters.metadata",
    "write_oci_archive": "polybuild.exporters.archive",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """This package, whose functions `export` and `metadata` share their names with
    submodules: importing a submodule sets the package's attribute of its name to it, which
    would hide the function (the eager imports this replaces set the function last)."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, types.ModuleType) and name in _MODULES:
            return  # `polybuild.exporters.export` stays reachable through sys.modules
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "EXPORTERS",
    "NO_OUTPUT_WARNING",
    "Annotation",
    "AnnotationTarget",
    "AssembledImage",
    "DockerArchive",
    "ExportContext",
    "ExportResult",
    "Exporter",
    "ImageOptions",
    "OutputSpec",
    "OutputType",
    "Pusher",
    "assemble",
    "check_outputs",
    "docker_platform",
    "export",
    "export_local",
    "export_outputs",
    "export_tar",
    "image_id",
    "metadata",
    "parse_output",
    "parse_outputs",
    "platform_dir_name",
    "push_image",
    "store_image",
    "write_docker_archive",
    "write_iidfile",
    "write_metadata_file",
    "write_oci_archive",
]
