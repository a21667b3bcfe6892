"""Put one platform's manifest into an image's index, replacing that platform's old variant."""

from __future__ import annotations

from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Stored, encode_index
from polybuild.image.select import platform_manifests
from polybuild.image.walk import BlobSource
from polybuild.platforms import Platform, normalize


def with_platform_manifest(
    source: BlobSource,
    existing: Descriptor | None,
    manifest: Descriptor,
    platform: Platform,
    *,
    docker: bool = False,
) -> Stored[Index]:
    """An index holding `existing`'s manifests plus `manifest` for `platform`.

    A variant of the same (normalised) platform is replaced; the others keep their order,
    and the new one goes where the replaced one stood, or last. `existing` may be an index,
    a single manifest or None.
    """
    wanted = normalize(platform)
    entries: list[Descriptor] = []
    placed = False
    if existing is not None:
        for descriptor, entry_platform in platform_manifests(source, existing):
            if normalize(entry_platform) == wanted:
                if not placed:
                    entries.append(manifest.with_platform(wanted))
                    placed = True
                continue
            entries.append(descriptor.with_platform(entry_platform))
    if not placed:
        entries.append(manifest.with_platform(wanted))
    media_type = mt.DOCKER_MANIFEST_LIST if docker else mt.OCI_INDEX
    return encode_index(Index(manifests=tuple(entries), media_type=media_type))
