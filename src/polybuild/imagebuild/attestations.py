"""The attestations a build asks for, made for each platform's image once it is built: SLSA
provenance (attest.provenance) from the request and the base images each platform used, and
an SPDX SBOM (polybuild.sbom) from a scan of the image's root file system unpacked into a
private scratch directory. The exporters then attach them to the outputs that carry them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, cast

from polybuild.attest.intoto import PREDICATE_SPDX
from polybuild.attest.options import ProvenanceOptions
from polybuild.attest.provenance import BuildRecord, ImageMaterial, SecretUse, predicate_json
from polybuild.errors import UsageError
from polybuild.image.content import ContentStore
from polybuild.image.layer import Layer
from polybuild.image.platform_image import PlatformImage, Predicate
from polybuild.imagebuild.baseimages import UsedImage
from polybuild.imagebuild.frontend_request import frontend_attrs
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, default_platform, format_platform

if TYPE_CHECKING:
    from polybuild.sbom import Inventory


def provenance_predicates(
    request: BuildRequest,
    options: ProvenanceOptions,
    images: Sequence[PlatformImage],
    bases: Mapping[Platform, tuple[UsedImage, ...]],
    *,
    started: datetime,
    finished: datetime,
    invocation_id: str,
) -> tuple[Predicate, ...]:
    """One provenance predicate per platform image, in `options`' mode and version."""
    name = request.dockerfile.name if request.dockerfile is not None else "Dockerfile"
    dockerfile = _dockerfile_bytes(request) if options.mode == "max" else None
    local = not request.context_source or request.context_source == "-"
    out = []
    for image in images:
        record = BuildRecord(
            builder_platform=default_platform(),
            started=started,
            finished=finished,
            invocation_id=invocation_id,
            frontend_attrs=frontend_attrs(request, name),
            locals=("context", "dockerfile") if local else ("dockerfile",),
            images=tuple(
                ImageMaterial(u.ref, u.digest, u.platform) for u in bases.get(image.platform, ())
            ),
            secrets=tuple(SecretUse(i) for i in sorted(request.secrets.secrets)),
            ssh=tuple(SecretUse(i) for i in sorted(request.secrets.ssh)),
            network_access=request.network != "none",
            dockerfile=(name, dockerfile) if dockerfile is not None else None,
            started_ns=started.microsecond * 1000,
            finished_ns=finished.microsecond * 1000,
        )
        out.append(
            Predicate(
                image.platform,
                options.predicate_type,
                predicate_json(record, options),
                inline_only=options.inline_only,
                filename=options.filename,
            )
        )
    return tuple(out)


def _dockerfile_bytes(request: BuildRequest) -> bytes | None:
    if request.dockerfile_text is not None:
        return request.dockerfile_text
    path = request.dockerfile or request.context / "Dockerfile"
    try:
        return path.read_bytes()
    except OSError:
        return None


def sbom_predicates(
    content: ContentStore,
    images: Sequence[PlatformImage],
    *,
    created: datetime,
    scanned: Mapping[Platform, tuple[tuple[str, tuple[Layer, ...]], ...]] | None = None,
) -> tuple[Predicate, ...]:
    """One SPDX document per platform image (`sbom.spdx.json`), then one per stage it also
    scans (`sbom-STAGE.spdx.json`, BUILDKIT_SBOM_SCAN_STAGE): the layers unpacked (as
    `-o type=local` does, never trusting their paths) into a private directory, scanned,
    then removed."""
    out = []
    for image in images:
        layers = tuple(
            Layer(descriptor, diff_id)
            for descriptor, diff_id in zip(
                image.manifest.value.layers, image.config.value.diff_ids, strict=True
            )
        )
        targets = [("", layers), *(scanned or {}).get(image.platform, ())]
        for stage, chain in targets:
            missing = [x for x in chain if not content.exists(x.descriptor.digest)]
            if missing:
                raise UsageError(
                    f"--sbom: the {format_platform(image.platform)} image's layers are not on "
                    f"this machine ({missing[0].descriptor.digest} ...): a node built and "
                    "pushed it itself",
                    hint="build the SBOM's platforms on this machine or an ssh node, or drop "
                    "--sbom",
                )
            name = f"sbom-{stage}" if stage else "sbom"
            from polybuild.sbom import spdx_document  # only a build that asks for an SBOM

            document = spdx_document(_scan(content, chain), name=name, created=created)
            body = json.dumps(document, indent=2).encode()
            out.append(
                Predicate(image.platform, PREDICATE_SPDX, body, filename=f"{name}.spdx.json")
            )
    return tuple(out)


def _scan(content: ContentStore, layers: Sequence[Layer]) -> Inventory:
    from polybuild.layers import UnpackMode, unpack_layer
    from polybuild.sbom import scan_rootfs
    from polybuild.scratch import scratch_dir

    with scratch_dir("sbom") as scratch:
        root = scratch / "rootfs"
        os.mkdir(root, 0o700)
        for layer in layers:
            with content.open(layer.descriptor.digest) as blob:
                unpack_layer(
                    cast(BinaryIO, blob),
                    root,
                    mode=UnpackMode.MERGED,
                    expected_diff_id=str(layer.diff_id),
                )
        return scan_rootfs(root)


def now() -> datetime:
    return datetime.now(UTC)


__all__ = ["now", "provenance_predicates", "sbom_predicates"]
