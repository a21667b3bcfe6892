"""What `imagetools create` takes, parsed as buildx parses it: sources (a reference, a bare
digest, or a JSON descriptor from an argument or `-f FILE`), the repository a bare digest or
descriptor resolves in, and `--annotation [TYPE[PLATFORM],...:]KEY=VALUE`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from polybuild.errors import InvalidReferenceError, PlatformError, UsageError
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest, is_digest
from polybuild.image.reference import Reference, parse
from polybuild.imagetools.gotemplate.printf import go_quote
from polybuild.platforms import Platform
from polybuild.platforms import parse as parse_platform

ANNOTATION_TYPES = ("index", "index-descriptor", "manifest", "manifest-descriptor")
_ANNOTATIONS = "failed to parse annotations: "
_ANNOTATION_TYPE = re.compile(r"^([a-z-]+)(?:\[([A-Za-z0-9_/-]+)\])?$")


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One source as given: `ref` (None for a bare digest or a descriptor until a repository
    is chosen), and what is known of its descriptor (`media_type` "" when only a digest)."""

    text: str
    ref: Reference | None = None
    digest: Digest | None = None
    media_type: str = ""
    size: int = 0
    platform: Platform | None = None
    annotations: Mapping[str, str] | None = None

    @property
    def needs_resolve(self) -> bool:
        """A reference, or a bare digest: the registry says what it is."""
        return self.ref is not None and not self.media_type

    def descriptor(self) -> Descriptor:
        assert self.digest is not None
        return Descriptor(
            self.media_type, self.digest, self.size, self.platform, dict(self.annotations or {})
        )


@dataclass(frozen=True, slots=True)
class AnnotationKey:
    """An annotation of `imagetools create`: its type ("" when none was given), key and the
    platform it is limited to."""

    type: str
    key: str
    platform: Platform | None = None


def _descriptor_source(text: str) -> SourceSpec:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{exc}") from None
    if not isinstance(document, dict):
        raise UsageError("expected an OCI content descriptor (a JSON object)")
    version = document.get("schemaVersion", 0)
    if version:
        raise UsageError(
            f"expected an OCI content descriptor, got a manifest or index (schemaVersion {version})"
        )
    digest = document.get("digest")
    if not digest:
        raise UsageError("invalid descriptor: digest is required")
    if not isinstance(digest, str) or not is_digest(digest):
        raise UsageError(f"invalid descriptor digest: invalid checksum digest format: {digest}")
    platform = None
    wire = document.get("platform")
    if isinstance(wire, dict):
        platform = Platform(
            str(wire.get("os", "")), str(wire.get("architecture", "")), str(wire.get("variant", ""))
        )
    annotations = document.get("annotations")
    size = document.get("size", 0)
    return SourceSpec(
        text,
        digest=Digest.parse(digest),
        media_type=str(document.get("mediaType", "")),
        size=size if isinstance(size, int) else 0,
        platform=platform,
        annotations={str(k): str(v) for k, v in annotations.items()}
        if isinstance(annotations, dict)
        else None,
    )


def parse_source(text: str) -> SourceSpec:
    """A digest (`sha256:...`), an image reference, or a JSON descriptor (`{...}`)."""
    try:
        if is_digest(text):
            return SourceSpec(text, digest=Digest.parse(text))
        if text.startswith("sha256"):
            raise UsageError("invalid checksum digest format")
        try:
            return SourceSpec(text, ref=parse(text))
        except InvalidReferenceError:
            if not text.startswith("{"):
                raise
        return _descriptor_source(text)
    except (UsageError, InvalidReferenceError) as exc:
        raise UsageError(
            f"failed to parse source {go_quote(text)}, valid sources are digests, references and "
            f"descriptors: {exc}"
        ) from None


def assign_repositories(
    sources: Sequence[SourceSpec], tags: Sequence[Reference]
) -> list[SourceSpec]:
    """Give each source without a reference the one repository named by the tags and source
    references (buildx's rule: a bare digest resolves there; a descriptor is read there)."""
    repositories = {t.name for t in tags} | {s.ref.name for s in sources if s.ref is not None}
    if not repositories:
        raise UsageError("no repositories specified, please set a reference in tag or source")
    default: Reference | None = None
    if len(repositories) == 1:
        default = next((s.ref for s in sources if s.ref is not None), None)
        if default is None and tags:
            default = tags[0]
    out: list[SourceSpec] = []
    for source in sources:
        if source.ref is not None:
            out.append(source)
            continue
        if default is None:
            raise UsageError(
                "multiple repositories specified, cannot infer repository for "
                + go_quote(source.text)
            )
        if not source.media_type and source.digest is not None:
            out.append(replace(source, ref=default.with_digest(source.digest)))
        else:  # a descriptor is read by digest from the repository (buildx: TagNameOnly)
            out.append(replace(source, ref=default.with_digest(None).with_tag("latest")))
    return out


def merge_resolved(source: SourceSpec, resolved: Descriptor) -> SourceSpec:
    """What the registry resolved, with what the user's descriptor says laid over it."""
    if source.size and source.size != resolved.size:
        raise UsageError(
            f"invalid size mismatch for {resolved.digest}, {source.size} != {resolved.size}"
        )
    return replace(
        source,
        digest=resolved.digest,
        media_type=source.media_type or resolved.media_type,
        size=resolved.size,
        platform=source.platform or resolved.platform,
        annotations=source.annotations or dict(resolved.annotations) or None,
    )


def parse_annotations(values: Sequence[str]) -> dict[AnnotationKey, str]:
    """`--annotation` values as buildx's ParseAnnotations reads them."""
    annotations: dict[AnnotationKey, str] = {}
    for value in values:
        if not value:
            continue
        key, sep, text = value.partition("=")
        if not sep:
            raise UsageError(
                f"{_ANNOTATIONS}invalid annotation {go_quote(value)}, expected key=value"
            )
        types, colon, name = key.partition(":")
        if not colon:
            annotations[AnnotationKey("", key)] = text
            continue
        for item in types.split(","):
            match = _ANNOTATION_TYPE.match(item)
            if match is None:
                raise UsageError(
                    f"{_ANNOTATIONS}invalid annotation type {go_quote(item)}, "
                    "expected type and optional platform in square brackets"
                )
            kind, platform_text = match.group(1), match.group(2)
            if kind not in ANNOTATION_TYPES:
                raise UsageError(f"{_ANNOTATIONS}unknown annotation type {go_quote(kind)}")
            platform = None
            if platform_text:
                try:
                    platform = parse_platform(platform_text)
                except PlatformError as exc:
                    raise UsageError(
                        f"{_ANNOTATIONS}invalid platform {go_quote(platform_text)}: {exc}"
                    ) from None
            annotations[AnnotationKey(kind, name, platform)] = text
    return annotations
