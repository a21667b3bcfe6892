"""`-o/--output`, `--push` and `--load` parsed into typed output specs, with buildx's CSV syntax.

    -o type=image,name=a:1,push=true     image store (and registry with push=true)
    -o type=registry,name=r/a:1          the same as type=image,push=true
    -o type=oci,dest=out.tar             OCI layout tarball (dest=- or none: stdout)
    -o type=docker,dest=out.tar          docker-archive tarball (no dest: the image store)
    -o type=local,dest=dir | -o dir      the final filesystem in a directory
    -o type=tar,dest=f.tar | -o -        the final filesystem as a tar stream
    -o type=cacheonly                    nothing (the result stays in the build cache)

Several names go in one quoted CSV field (`"name=a,b"`) as in buildx; a bare field right
after `name=` is taken as one more name too, so `type=image,name=a,b` also works.
"""

from __future__ import annotations

import csv
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from polybuild.errors import InvalidReferenceError, PlatformError, UsageError
from polybuild.image.reference import Reference, parse
from polybuild.layers.compression import Compression
from polybuild.platforms import Platform, normalize
from polybuild.platforms import parse as parse_platform


class OutputType(enum.StrEnum):
    """The kinds of build output."""

    IMAGE = "image"
    OCI = "oci"
    DOCKER = "docker"
    LOCAL = "local"
    TAR = "tar"
    CACHEONLY = "cacheonly"


class AnnotationTarget(enum.StrEnum):
    """Where an annotation goes (BuildKit's annotation types)."""

    MANIFEST = "manifest"
    INDEX = "index"
    MANIFEST_DESCRIPTOR = "manifest-descriptor"
    INDEX_DESCRIPTOR = "index-descriptor"


@dataclass(frozen=True, slots=True)
class Annotation:
    """One annotation; `platform` limits a manifest(-descriptor) annotation to one platform."""

    target: AnnotationTarget
    key: str
    value: str
    platform: Platform | None = None


@dataclass(frozen=True, slots=True)
class ImageOptions:
    """How the image is assembled: media types, layer compression and annotations."""

    oci_mediatypes: bool = True
    # oci-mediatypes given in the output: the docker exporter's default (Docker types)
    # gives way to OCI types for attestations, as BuildKit's does, only when it is not
    media_types_given: bool = False
    compression: Compression | None = None
    compression_level: int | None = None
    force_compression: bool = False
    annotations: tuple[Annotation, ...] = ()


@dataclass(frozen=True, slots=True)
class OutputSpec:
    """One build output. `dest` is None when not given, "-" for stdout."""

    type: OutputType
    dest: str | None = None
    names: tuple[Reference, ...] = ()
    push: bool = False
    store: bool = True
    platform_split: bool | None = None
    image: ImageOptions = field(default_factory=ImageOptions)
    load: bool = False  # --load: also into a running Docker Engine (exporters/docker_engine)

    @property
    def to_stdout(self) -> bool:
        return self.dest == "-"


_FLAG = "--output"
_BOOL = {"true": True, "1": True, "false": False, "0": False, "": True}
_COMPRESSION = {
    "gzip": Compression.GZIP,
    "zstd": Compression.ZSTD,
    "uncompressed": Compression.NONE,
}
_ANNOTATION = re.compile(
    r"^annotation(?:-(index|manifest|index-descriptor|manifest-descriptor))?"
    r"(?:\[([A-Za-z0-9_/.-]+)\])?\.(.+)$"
)
# Keys each type understands besides `type`, `dest` and annotations.
_IMAGE_KEYS = {
    "name",
    "push",
    "store",
    "oci-mediatypes",
    "compression",
    "compression-level",
    "force-compression",
}
_KEYS: Mapping[OutputType, frozenset[str]] = {
    OutputType.IMAGE: frozenset(_IMAGE_KEYS),
    OutputType.OCI: frozenset(_IMAGE_KEYS - {"push", "store"}),
    OutputType.DOCKER: frozenset(_IMAGE_KEYS - {"push", "store"}),
    OutputType.LOCAL: frozenset({"platform-split"}),
    OutputType.TAR: frozenset({"platform-split"}),
    OutputType.CACHEONLY: frozenset(),
}
_ANNOTATED = {OutputType.IMAGE, OutputType.OCI, OutputType.DOCKER}


def _fields(spec: str) -> list[str]:
    try:
        rows = list(csv.reader([spec], skipinitialspace=False, strict=True))
    except csv.Error as exc:
        raise UsageError(f"{_FLAG}: cannot parse {spec!r}: {exc}") from None
    return rows[0] if rows else []


def _pairs(spec: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for item in _fields(spec):
        key, sep, value = item.partition("=")
        if not sep:
            if pairs and pairs[-1][0] == "name":
                pairs[-1] = ("name", f"{pairs[-1][1]},{item}")
                continue
            raise UsageError(
                f"{_FLAG}: invalid value {item!r} in {spec!r}: expected key=value",
                hint="quote a field holding commas: -o 'type=image,\"name=a,b\"'",
            )
        pairs.append((key.strip().lower(), value))
    return pairs


def _bool(key: str, value: str) -> bool:
    try:
        return _BOOL[value.strip().lower()]
    except KeyError:
        raise UsageError(f"{_FLAG}: {key} must be true or false, not {value!r}") from None


def _names(value: str) -> tuple[Reference, ...]:
    names: list[Reference] = []
    for text in (part.strip() for part in value.split(",")):
        if not text:
            continue
        try:
            ref = parse(text)
        except InvalidReferenceError as exc:
            raise UsageError(f"{_FLAG}: name: {exc}") from None
        if ref.digest is not None:
            raise UsageError(f"{_FLAG}: name {text!r} may not contain a digest")
        if ref not in names:
            names.append(ref)
    return tuple(names)


def _annotation(key: str, value: str) -> Annotation | None:
    match = _ANNOTATION.match(key)
    if match is None:
        return None
    kind, platform_text, name = match.groups()
    target = AnnotationTarget(kind) if kind else AnnotationTarget.MANIFEST
    platform = None
    if platform_text:
        if target in (AnnotationTarget.INDEX, AnnotationTarget.INDEX_DESCRIPTOR):
            raise UsageError(f"{_FLAG}: {key}: only manifest annotations can name a platform")
        try:
            platform = normalize(parse_platform(platform_text))
        except PlatformError as exc:
            raise UsageError(f"{_FLAG}: {key}: {exc}") from None
    return Annotation(target, name, value, platform)


def parse_output(spec: str) -> OutputSpec:
    """One `-o` value; UsageError naming the key that is wrong."""
    if spec == "-":
        return OutputSpec(OutputType.TAR, dest="-")
    # As buildx: one CSV field that is not `type=...` is a directory, even with a "=" in it.
    if not spec.lower().startswith("type=") and _fields(spec) == [spec]:
        return OutputSpec(OutputType.LOCAL, dest=spec)
    pairs = _pairs(spec)
    kinds = [v for k, v in pairs if k == "type"]
    if not kinds:
        raise UsageError(
            f"{_FLAG}: type is required in {spec!r}", hint="e.g. -o type=local,dest=out"
        )
    kind_text = kinds[-1].strip().lower()
    push_default = kind_text == "registry"
    if push_default:
        kind_text = OutputType.IMAGE
    try:
        kind = OutputType(kind_text)
    except ValueError:
        known = ", ".join([*(t.value for t in OutputType), "registry"])
        raise UsageError(f'{_FLAG}: unknown type "{kinds[-1]}"', hint=f"types: {known}") from None
    values: dict[str, str] = {}
    annotations: list[Annotation] = []
    for key, value in pairs:
        if key == "type":
            continue
        if key.startswith("annotation"):
            annotation = _annotation(key, value)
            if annotation is None:
                raise UsageError(f"{_FLAG}: invalid annotation key {key!r}")
            if kind not in _ANNOTATED:
                raise UsageError(f"{_FLAG}: type={kind} does not take annotations ({key})")
            annotations.append(annotation)
            continue
        if key != "dest" and key not in _KEYS[kind]:
            raise UsageError(f'{_FLAG}: unknown key "{key}" for type={kind}')
        values[key] = value
    return _build(kind, values, tuple(annotations), push_default)


def _build(
    kind: OutputType, values: dict[str, str], annotations: tuple[Annotation, ...], push: bool
) -> OutputSpec:
    dest = values.get("dest")
    if dest is not None and not dest:
        raise UsageError(f"{_FLAG}: dest is empty for type={kind}")
    if kind in (OutputType.IMAGE, OutputType.CACHEONLY) and dest is not None:
        raise UsageError(f"{_FLAG}: type={kind} does not take dest")
    if kind is OutputType.LOCAL:
        if dest is None:
            raise UsageError(f"{_FLAG}: dest is required for type=local")
        if dest == "-":
            raise UsageError(f"{_FLAG}: dest cannot be stdout for type=local", hint="use type=tar")
    if kind in (OutputType.OCI, OutputType.TAR) and dest is None:
        dest = "-"
    level = None
    if "compression-level" in values:
        try:
            level = int(values["compression-level"])
        except ValueError:
            raise UsageError(
                f"{_FLAG}: compression-level must be an integer, not "
                f"{values['compression-level']!r}"
            ) from None
    compression = None
    if "compression" in values:
        try:
            compression = _COMPRESSION[values["compression"].strip().lower()]
        except KeyError:
            raise UsageError(
                f"{_FLAG}: compression must be gzip, zstd or uncompressed, not "
                f"{values['compression']!r}"
            ) from None
    # The docker exporter writes Docker media types unless told otherwise (as BuildKit's).
    oci = (
        _bool("oci-mediatypes", values["oci-mediatypes"])
        if "oci-mediatypes" in values
        else (kind is not OutputType.DOCKER)
    )
    image = ImageOptions(
        oci_mediatypes=oci,
        media_types_given="oci-mediatypes" in values,
        compression=compression,
        compression_level=level,
        force_compression=_bool("force-compression", values.get("force-compression", "false")),
        annotations=annotations,
    )
    return OutputSpec(
        type=kind,
        dest=dest,
        names=_names(values.get("name", "")),
        push=_bool("push", values["push"]) if "push" in values else push,
        store=_bool("store", values.get("store", "true")),
        platform_split=_bool("platform-split", values["platform-split"])
        if "platform-split" in values
        else None,
        image=image,
    )


def _with_tags(spec: OutputSpec, tags: tuple[Reference, ...]) -> OutputSpec:
    if spec.names or not tags or spec.type not in _ANNOTATED:
        return spec
    return replace(spec, names=tags)


def parse_annotation_flag(text: str) -> tuple[Annotation, ...]:
    """`--annotation [TYPE[,TYPE...][PLATFORM]:]KEY=VALUE` as buildx takes it.

    With no type the annotation goes on the manifests; several comma-separated types give
    one annotation each (`index,manifest:KEY=VALUE`).
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"--annotation: invalid value {text!r}", hint="use KEY=VALUE")
    kinds, colon, name = key.rpartition(":") if ":" in key else ("", "", key)
    prefixes = [f"annotation-{kind}" for kind in kinds.split(",")] if colon else ["annotation"]
    annotations = []
    for prefix in prefixes:
        annotation = _annotation(f"{prefix}.{name}", value)
        if annotation is None:
            raise UsageError(
                f"--annotation: invalid annotation type in {text!r}",
                hint="types: manifest, index, manifest-descriptor, index-descriptor",
            )
        annotations.append(annotation)
    return tuple(annotations)


def parse_outputs(
    specs: Sequence[str],
    *,
    push: bool = False,
    load: bool = False,
    tags: Iterable[str] = (),
    annotations: Sequence[str] = (),
) -> list[OutputSpec]:
    """All outputs of a build: `-o` values, then `--push` / `--load`, with `-t` names applied.

    `--annotation` values are added to every output that takes annotations.

    `--push` sets push=true on the first image output (or adds one); `--load` adds an
    image output into the local store unless one already stores there, and marks that
    output to load into a Docker Engine too (unless a `type=docker` output without dest
    does that already). Outputs that take names and have none get the `-t` tags. Checks
    what can be checked before building.
    """
    tag_refs = _names(",".join(tags)) if tags else ()
    outputs = [parse_output(spec) for spec in specs if spec != ""]
    if push:
        images = [i for i, o in enumerate(outputs) if o.type is OutputType.IMAGE]
        if images:
            outputs[images[0]] = replace(outputs[images[0]], push=True)
        else:
            outputs.append(OutputSpec(OutputType.IMAGE, push=True, store=False))
    if load:
        # A type=docker output without dest loads into the engine already.
        engine = not any(o.type is OutputType.DOCKER and o.dest is None for o in outputs)
        images = [i for i, o in enumerate(outputs) if o.type is OutputType.IMAGE]
        stored = [i for i in images if outputs[i].store]
        if stored:
            outputs[stored[0]] = replace(outputs[stored[0]], load=engine)
        elif images:
            outputs[images[0]] = replace(outputs[images[0]], store=True, load=engine)
        else:
            outputs.append(OutputSpec(OutputType.IMAGE, load=engine))
    outputs = [_with_tags(o, tag_refs) for o in outputs if o.type is not OutputType.CACHEONLY]
    extra = tuple(item for a in annotations for item in parse_annotation_flag(a))
    if extra:
        outputs = [
            replace(o, image=replace(o.image, annotations=(*o.image.annotations, *extra)))
            if o.type in _ANNOTATED
            else o
            for o in outputs
        ]
    _check(outputs)
    return outputs


def _check(outputs: list[OutputSpec]) -> None:
    stdout = [o for o in outputs if o.to_stdout]
    if len(stdout) > 1:
        raise UsageError(f"{_FLAG}: more than one output writes to stdout")
    for output in outputs:
        if output.type is OutputType.IMAGE and output.push and not output.names:
            raise UsageError(
                f"{_FLAG}: a name is needed to push the image",
                hint="give -t NAME or name=NAME in the output",
            )
        if output.type is OutputType.IMAGE and not output.push and not output.store:
            raise UsageError(f"{_FLAG}: type=image with store=false and no push writes nothing")
        annotations = output.image.annotations
        if annotations and not output.image.oci_mediatypes:
            raise UsageError(
                f"{_FLAG}: annotations need OCI media types",
                hint="drop oci-mediatypes=false, or the annotations",
            )


__all__ = [
    "Annotation",
    "AnnotationTarget",
    "ImageOptions",
    "OutputSpec",
    "OutputType",
    "parse_output",
    "parse_outputs",
]
