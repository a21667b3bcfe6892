"""Build outputs as buildx's `-o/--output`: image store, registry, OCI, docker, local dir, tar.

>>> from polybuild.exporters import parse_outputs
>>> [o.type.value for o in parse_outputs(["./out", "type=oci,dest=img.tar"], load=True)]
['local', 'oci', 'image']
"""

from __future__ import annotations

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
