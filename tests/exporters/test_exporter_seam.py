"""The exporter seam: outputs go to the exporter registered for their type (no root)."""

from __future__ import annotations

import asyncio
import io

import pytest

from polybuild.errors import UsageError
from polybuild.exporters import EXPORTERS, OutputType, parse_outputs
from polybuild.exporters.base import ExportContext, Exporter
from polybuild.exporters.export import check_outputs, export_outputs
from polybuild.image.platform_image import ExportSource
from polybuild.image.store import ImageStore
from polybuild.testing.exporter import RecordingExporter


def test_every_output_type_but_cacheonly_has_an_exporter() -> None:
    assert set(EXPORTERS) == set(OutputType) - {OutputType.CACHEONLY}


def context(store: ImageStore, warnings: list[str]) -> ExportContext:
    return ExportContext(stdout=io.BytesIO(), warn=warnings.append, store=store)


def test_outputs_reach_their_exporter_in_order_with_one_assembly_per_options(
    source: ExportSource, store: ImageStore
) -> None:
    oci, tar = RecordingExporter(), RecordingExporter(warning="tar said this")
    table: dict[OutputType, Exporter] = {OutputType.OCI: oci, OutputType.TAR: tar}
    outputs = parse_outputs(["type=oci,dest=a.tar", "type=tar,dest=b.tar", "type=oci,dest=c"])
    warnings: list[str] = []
    results = asyncio.run(
        export_outputs(source, outputs, context(store, warnings), exporters=table)
    )
    assert [o.dest for o, _ in oci.exported] == ["a.tar", "c"]
    assert [o.dest for o, _ in tar.exported] == ["b.tar"]
    # Same image options: assembled once, the same image handed to each exporter.
    images = {id(image) for _, image in (*oci.exported, *tar.exported)}
    assert len(images) == 1
    assert warnings == ["tar said this"]
    assert [str(r.path) for r in results] == ["a.tar", "b.tar", "c"]


def test_different_image_options_assemble_different_images(
    source: ExportSource, store: ImageStore
) -> None:
    oci = RecordingExporter()
    outputs = parse_outputs(["type=oci,dest=a", "type=oci,dest=b,oci-mediatypes=false"])
    asyncio.run(
        export_outputs(source, outputs, context(store, []), exporters={OutputType.OCI: oci})
    )
    (_, first), (_, second) = oci.exported
    assert not first.docker_media_types and second.docker_media_types
    assert first.digest != second.digest


def test_check_asks_every_exporter_before_anything_is_written(store: ImageStore) -> None:
    refused = RecordingExporter(refuse=UsageError("--output: no"))
    fine = RecordingExporter()
    outputs = parse_outputs(["type=oci,dest=a", "type=local,dest=out"])
    table: dict[OutputType, Exporter] = {OutputType.OCI: fine, OutputType.LOCAL: refused}
    with pytest.raises(UsageError, match="no"):
        check_outputs(outputs, context(store, []), exporters=table)
    assert [o.type for o in fine.checked] == [OutputType.OCI]
    assert fine.exported == [] and refused.exported == []
