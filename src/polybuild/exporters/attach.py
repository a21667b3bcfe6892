"""Attestations in an exported image, as BuildKit's exporters attach them: one attestation
manifest per attested platform image, listed after all the images in the index (a single
platform becomes an index), its statements' subjects the output's names at the manifest
digest the output writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from polybuild.attest.intoto import image_subjects, statement
from polybuild.attest.manifests import AttestationManifest, attestation_manifest, with_attestations
from polybuild.attest.options import attached_to
from polybuild.exporters.assemble import AssembledImage
from polybuild.exporters.spec import ImageOptions, OutputSpec, OutputType
from polybuild.image import mediatypes as mt
from polybuild.image.manifest import Index, encode_index
from polybuild.image.platform_image import Predicate


def exporter_kind(output: OutputSpec) -> str:
    """The BuildKit exporter an output behaves as: an image that is only stored here (`--load`,
    `-t` alone) is `docker` (buildx's --load), one that is pushed is `image`."""
    if output.type is OutputType.IMAGE:
        return "image" if output.push else "docker"
    return output.type.value


def carried(
    predicates: Sequence[Predicate], output: OutputSpec, *, multi_platform: bool
) -> tuple[Predicate, ...]:
    """The predicates `output` carries (BuildKit's rules: attest.options.attached_to);
    `multi_platform`: the output is an index anyway."""
    kind = exporter_kind(output)
    multi = multi_platform
    return tuple(p for p in predicates if attached_to(p.inline_only, kind, multi_platform=multi))


def media_types_for(
    options: ImageOptions, predicates: Sequence[Predicate], output: OutputSpec, multi: bool
) -> ImageOptions:
    """The docker exporter writes OCI media types when it carries attestations and was not
    told which to write (BuildKit's DefaultOCITypes); every other output as asked."""
    if options.oci_mediatypes or options.media_types_given:
        return options
    if not carried(predicates, output, multi_platform=multi):
        return options
    return replace(options, oci_mediatypes=True)


def attested(
    image: AssembledImage, predicates: Sequence[Predicate], output: OutputSpec
) -> AssembledImage:
    """`image` with the attestation manifests `output` carries (itself when none; local and
    tar outputs write theirs as files instead)."""
    chosen = carried(predicates, output, multi_platform=image.index is not None)
    if not chosen:
        return image
    if output.type in (OutputType.LOCAL, OutputType.TAR):
        return replace(image, attestation_files=chosen)
    names = [str(name) for name in output.names]
    content = image.content
    made: list[AttestationManifest] = []
    entries = (
        image.index.value.manifests
        if image.index is not None
        else (image.platforms[0].manifest.descriptor(platform=image.platforms[0].platform),)
    )
    for platform_image in image.platforms:
        mine = [p for p in chosen if p.platform == platform_image.platform]
        if not mine:
            continue
        subjects = image_subjects(names, platform_image.platform, platform_image.manifest.digest)
        attestation = attestation_manifest(
            platform_image.manifest.descriptor(platform=platform_image.platform),
            [statement(p.predicate_type, p.body, subjects) for p in mine],
            oci_types=not image.docker_media_types,
        )
        for digest, raw in attestation.blobs.items():
            content.put(raw, digest)
        content.put(attestation.manifest.raw, attestation.manifest.digest)
        made.append(attestation)
    if not made:
        return image
    annotations = image.index.value.annotations if image.index is not None else {}
    index = encode_index(
        Index(
            manifests=with_attestations(entries, made),
            media_type=mt.OCI_INDEX,
            annotations=annotations,
        )
    )
    content.put(index.raw, index.digest)
    return replace(
        image, target=index.descriptor(annotations=image.target.annotations), index=index
    )


__all__ = ["attested", "carried", "exporter_kind", "media_types_for"]
