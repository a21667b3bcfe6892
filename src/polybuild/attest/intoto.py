"""in-toto statements as BuildKit writes them into attestation layers: `_type`,
`predicateType`, `subject` ([{name, digest}]), `predicate`, compact Go JSON; subjects named
by the image's package URL (`pkg:docker/NAME@TAG?platform=OS%2FARCH`) for each name the image
is exported under, none for an unnamed image."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote, quote_plus

from polybuild.attest import gojson
from polybuild.image.digest import Digest
from polybuild.image.reference import parse as parse_reference
from polybuild.platforms import Platform, format_platform, normalize

STATEMENT_V1: Final = "https://in-toto.io/Statement/v1"
STATEMENT_V01: Final = "https://in-toto.io/Statement/v0.1"
PREDICATE_SPDX: Final = "https://spdx.dev/Document"


@dataclass(frozen=True, slots=True)
class Subject:
    """What a statement is about: a name and its digests (algorithm -> hex)."""

    name: str
    digest: Mapping[str, str] = field(default_factory=dict, hash=False)

    @classmethod
    def of(cls, name: str, digest: Digest) -> Subject:
        return cls(name, {digest.algorithm: digest.hex})

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "digest": dict(sorted(self.digest.items()))}


@dataclass(frozen=True, slots=True)
class Statement:
    """An in-toto statement; `predicate` is the predicate's JSON bytes (any formatting)."""

    predicate_type: str
    subjects: tuple[Subject, ...]
    predicate: bytes
    type: str = STATEMENT_V1

    def to_json(self) -> bytes:
        """The layer's bytes: Go's json.Marshal of in-toto-golang's Statement."""
        return gojson.marshal(self.to_wire())

    def to_json_indent(self) -> bytes:
        """The file the local and tar exporters write (json.MarshalIndent)."""
        return gojson.marshal_indent(self.to_wire())

    def to_wire(self) -> dict[str, Any]:
        return {
            "_type": self.type,
            "predicateType": self.predicate_type,
            "subject": [s.to_wire() for s in self.subjects],
            "predicate": gojson.loads(self.predicate),
        }


def _go_query_escape(text: str) -> str:
    return quote_plus(text, safe="")


def _go_path_escape(text: str) -> str:
    return quote(text, safe="$&+:=@")


def package_url(
    purl_type: str,
    ref: str,
    platform: Platform | None,
    qualifiers: Iterable[tuple[str, str]] = (),
) -> str:
    """BuildKit's RefToPURL: `pkg:TYPE/NAMESPACE/NAME@TAG?digest=..&platform=..` with Go's
    escaping (namespace and name query-escaped, version and qualifier values path-escaped);
    a reference without tag or digest gets `latest`; the platform is normalised."""
    parsed = parse_reference(ref, default_tag=False)
    pairs: list[tuple[str, str]] = []
    version = parsed.tag
    if parsed.digest is not None:
        pairs.append(("digest", str(parsed.digest)))
    elif not version:
        version = "latest"
    if platform is not None:
        pairs.append(("platform", format_platform(normalize(platform))))
    pairs += list(qualifiers)
    *namespace, name = parsed.familiar_name.split("/")
    text = f"pkg:{purl_type}/"
    if namespace:
        text += "/".join(_go_query_escape(n) for n in namespace) + "/"
    text += _go_query_escape(name)
    if version:
        text += "@" + _go_path_escape(version)
    if pairs:
        text += "?" + "&".join(f"{k}={_go_path_escape(v)}" for k, v in pairs)
    return text


def image_subjects(
    names: Iterable[str], platform: Platform, manifest: Digest
) -> tuple[Subject, ...]:
    """The default subjects of an image's attestations: one per name of the export
    (`name=a,b`: each non-empty name), each its package URL with the platform; none for an
    unnamed image (BuildKit writes `"subject":[]`)."""
    return tuple(
        Subject.of(package_url("docker", name, platform), manifest) for name in names if name
    )


def statement(predicate_type: str, predicate: bytes, subjects: Iterable[Subject]) -> Statement:
    """A statement about `subjects` whose predicate is `predicate` (JSON bytes)."""
    return Statement(predicate_type, tuple(subjects), predicate)
