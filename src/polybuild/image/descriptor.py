"""The Descriptor value (media type, digest, size, platform) and its JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from polybuild.errors import ImageError
from polybuild.image._wire import DescriptorJSON, PlatformJSON, decode, encode
from polybuild.image.digest import Digest, InvalidDigestError
from polybuild.platforms import Platform


@dataclass(frozen=True, slots=True)
class Descriptor:
    """Points at a blob by digest and size; `platform` is set for entries of an index.

    The platform is kept as written (not normalised) so that re-serialising an index gives
    the same bytes; matchers normalise when they compare.
    """

    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    urls: tuple[str, ...] = ()
    artifact_type: str = ""

    def __post_init__(self) -> None:
        if self.size < 0:
            raise ImageError(f"invalid descriptor for {self.digest}: negative size {self.size}")

    def with_annotations(self, annotations: Mapping[str, str]) -> Descriptor:
        """A copy whose annotations are exactly `annotations`."""
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            self.platform,
            dict(annotations),
            self.urls,
            self.artifact_type,
        )

    def with_platform(self, platform: Platform | None) -> Descriptor:
        """A copy with `platform` set (or cleared)."""
        return Descriptor(
            self.media_type,
            self.digest,
            self.size,
            platform,
            dict(self.annotations),
            self.urls,
            self.artifact_type,
        )

    def to_json(self) -> bytes:
        """Compact JSON as the Go types emit it."""
        return encode(descriptor_to_wire(self))

    @classmethod
    def from_json(cls, raw: bytes) -> Descriptor:
        """Parse one descriptor; ImageError if it is malformed."""
        return descriptor_from_wire(decode(raw, DescriptorJSON, "descriptor"), "descriptor")


def platform_from_wire(wire: PlatformJSON) -> Platform:
    return Platform(wire.os, wire.architecture, wire.variant)


def platform_to_wire(platform: Platform) -> PlatformJSON:
    return PlatformJSON(
        architecture=platform.architecture, os=platform.os, variant=platform.variant
    )


def descriptor_from_wire(wire: DescriptorJSON, where: str) -> Descriptor:
    """The Descriptor for a decoded JSON descriptor; `where` names it in errors."""
    if not wire.media_type:
        raise ImageError(f"invalid {where}: mediaType is empty")
    try:
        digest = Digest.parse(wire.digest)
    except InvalidDigestError as exc:
        raise ImageError(f"invalid {where}: {exc}") from None
    if wire.size < 0:
        raise ImageError(f"invalid {where}: negative size {wire.size}")
    return Descriptor(
        media_type=wire.media_type,
        digest=digest,
        size=wire.size,
        platform=platform_from_wire(wire.platform) if wire.platform else None,
        annotations=dict(wire.annotations or {}),
        urls=tuple(wire.urls or ()),
        artifact_type=wire.artifact_type,
    )


def descriptor_to_wire(descriptor: Descriptor) -> DescriptorJSON:
    return DescriptorJSON(
        media_type=descriptor.media_type,
        digest=str(descriptor.digest),
        size=descriptor.size,
        urls=list(descriptor.urls) or None,
        annotations=dict(descriptor.annotations) or None,
        platform=platform_to_wire(descriptor.platform) if descriptor.platform else None,
        artifact_type=descriptor.artifact_type,
    )
