"""buildx's attestation flags as values: `--attest`, `--provenance`, `--sbom`, the default
min provenance (BUILDX_NO_DEFAULT_ATTESTATIONS) and which outputs carry what.

buildx turns `--provenance V` / `--sbom V` into `--attest type=provenance,V` (a boolean V into
`disabled=!V`), parses every `--attest` as one CSV record of key=value fields, and keeps the
first value given for each type (`Attests.ToMap`). Without a provenance entry it asks for
`mode=min,inline-only=true` unless BUILDX_NO_DEFAULT_ATTESTATIONS is true. BuildKit then fills
its defaults (provenance: `mode=max`, `version=v1`; sbom: the syft scanner image) and checks
the values; both steps are done here so that a bad value fails before any work."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from polybuild.errors import UsageError

NO_DEFAULT_ATTESTATIONS_ENV: Final = "BUILDX_NO_DEFAULT_ATTESTATIONS"
DEFAULT_SBOM_GENERATOR: Final = "docker/buildkit-syft-scanner:stable-1"
PROVENANCE_VERSIONS: Final = ("v1", "v0.2")
DEFAULT_PROVENANCE_VERSION: Final = "v1"  # BuildKit >= 0.28 (frontend/attestations/parse.go)

Mode = Literal["min", "max"]

_TRUE: Final = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE: Final = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def parse_go_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool, None where it fails."""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _parse_bool_error(value: str) -> str:
    return f'strconv.ParseBool: parsing "{value}": invalid syntax'


@dataclass(frozen=True, slots=True)
class Attest:
    """One `--attest` value as buildx parses it: its type, `disabled`, the other fields."""

    type: str
    disabled: bool = False
    attrs: Mapping[str, str] = field(default_factory=dict, hash=False)

    def csv(self) -> str:
        """buildx's CSV form (the `attest:TYPE` frontend attribute): type, disabled, the rest
        sorted by key."""
        fields = [f"type={self.type}"] if self.type else []
        if self.disabled:
            fields.append("disabled=true")
        fields += [f"{k}={v}" for k, v in sorted(self.attrs.items())]
        return _csv_line(fields)


def _csv_line(fields: list[str]) -> str:
    def quoted(f: str) -> str:
        if "," in f or '"' in f:  # buildx's csvBuilder quotes only these
            return '"' + f.replace('"', '""') + '"'
        return f

    return ",".join(quoted(f) for f in fields)


def _csv_fields(text: str) -> list[str]:
    try:
        rows = list(csv.reader([text], strict=True))
    except csv.Error as exc:
        raise UsageError(f"invalid attest value {text!r}: {exc}") from None
    return rows[0] if rows else []


def parse_attest(text: str) -> Attest:
    """One `--attest` value (`type=sbom,generator=image`); buildx's errors word for word."""
    kind = ""
    disabled = False
    attrs: dict[str, str] = {}
    for item in _csv_fields(text):
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"invalid value {item}")
        name = key.strip().lower()
        if name == "type":
            kind = value
        elif name == "disabled":
            parsed = parse_go_bool(value)
            if parsed is None:
                raise UsageError(f"invalid value {item}: {_parse_bool_error(value)}")
            disabled = parsed
        else:
            attrs[key] = value
    if not kind:
        raise UsageError("attestation type not specified")
    return Attest(kind, disabled, attrs)


def canonicalize(kind: str, value: str) -> str:
    """`--provenance`/`--sbom` as the `--attest` value buildx makes of it."""
    if value == "":
        return ""
    parsed = parse_go_bool(value)
    if parsed is not None:
        return f"type={kind},disabled={'false' if parsed else 'true'}"
    return f"type={kind},{value}"


@dataclass(frozen=True, slots=True)
class ProvenanceOptions:
    """What BuildKit's provenance processor is asked for (`attest:provenance`)."""

    mode: Mode = "max"
    version: str = DEFAULT_PROVENANCE_VERSION
    builder_id: str = ""
    reproducible: bool = False
    inline_only: bool = False
    filename: str = "provenance.json"
    extra: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def predicate_type(self) -> str:
        return f"https://slsa.dev/provenance/{self.version}"


@dataclass(frozen=True, slots=True)
class SBOMOptions:
    """What BuildKit's SBOM step is asked for (`attest:sbom`); `params` are the generator's
    other parameters (BUILDKIT_SCAN_<KEY>), `scan_stage`/`scan_context` None when not given
    (the Dockerfile's BUILDKIT_SBOM_SCAN_* args decide)."""

    generator: str = DEFAULT_SBOM_GENERATOR
    scan_stage: bool | None = None
    scan_context: bool | None = None
    params: Mapping[str, str] = field(default_factory=dict, hash=False)


DEFAULT_PROVENANCE: Final = ProvenanceOptions(mode="min", inline_only=True)


@dataclass(frozen=True, slots=True)
class Attestations:
    """The attestations a build asks for; None: not asked (or disabled). `provenance_is_default`:
    the provenance is buildx's implicit `mode=min,inline-only=true`."""

    provenance: ProvenanceOptions | None = None
    sbom: SBOMOptions | None = None
    provenance_is_default: bool = False
    requested: Mapping[str, str] = field(default_factory=dict, hash=False)  # type -> CSV

    @property
    def any(self) -> bool:
        return self.provenance is not None or self.sbom is not None

    def frontend_attrs(self) -> dict[str, str]:
        """`attest:provenance` / `attest:sbom` as buildx sends them to a BuildKit daemon: each
        enabled type's value as given (buildx's CSV), or the default provenance."""
        out = {f"attest:{kind}": value for kind, value in self.requested.items()}
        if self.provenance_is_default:
            out["attest:provenance"] = "mode=min,inline-only=true"
        return out


def _flag_bool(kind: str, key: str, value: str) -> bool:
    parsed = parse_go_bool(value)
    if parsed is None:
        raise UsageError(
            f"--attest type={kind}: failed to parse {key} flag {value!r}: "
            f"{_parse_bool_error(value)}"
        )
    return parsed


def provenance_options(attrs: Mapping[str, str]) -> ProvenanceOptions:
    """BuildKit's reading of `attest:provenance`'s fields (mode `full` is `max`)."""
    rest = {k: v for k, v in attrs.items() if k not in _PROVENANCE_KEYS}
    mode = attrs.get("mode", "max")
    if mode == "full":
        mode = "max"
    if mode not in ("min", "max"):
        raise UsageError(f'--attest type=provenance: invalid mode "{mode}"')
    version = attrs.get("version", DEFAULT_PROVENANCE_VERSION)
    if version not in PROVENANCE_VERSIONS:
        message = (
            "provenance SLSA version cannot be empty"
            if not version
            else f"invalid provenance SLSA version: {version}"
        )
        raise UsageError(f"--attest type=provenance: {message}", hint="use version=v0.2 or v1")
    inline = parse_go_bool(attrs.get("inline-only", "")) is True  # BuildKit ignores bad values
    return ProvenanceOptions(
        mode="min" if mode == "min" else "max",
        version=version,
        builder_id=attrs.get("builder-id", ""),
        reproducible=_flag_bool("provenance", "reproducible", attrs["reproducible"])
        if "reproducible" in attrs
        else False,
        inline_only=inline,
        filename=attrs.get("filename", "provenance.json"),
        extra=rest,
    )


_PROVENANCE_KEYS: Final = frozenset(
    {"type", "mode", "version", "builder-id", "reproducible", "inline-only", "filename"}
)


def sbom_options(attrs: Mapping[str, str]) -> SBOMOptions:
    """The `attest:sbom` fields: the generator, scan-stage/scan-context, other parameters."""

    def flag(key: str) -> bool | None:
        return _flag_bool("sbom", key, attrs[key]) if key in attrs else None

    params = {
        k: v
        for k, v in attrs.items()
        if k not in ("type", "generator", "scan-stage", "scan-context")
    }
    return SBOMOptions(
        generator=attrs.get("generator") or DEFAULT_SBOM_GENERATOR,
        scan_stage=flag("scan-stage"),
        scan_context=flag("scan-context"),
        params=params,
    )


def no_default_attestations(env: Mapping[str, str]) -> bool:
    """BUILDX_NO_DEFAULT_ATTESTATIONS as buildx reads it (Go's ParseBool; unset: False)."""
    value = env.get(NO_DEFAULT_ATTESTATIONS_ENV)
    if value is None:
        return False
    parsed = parse_go_bool(value)
    if parsed is None:
        raise UsageError(
            f"invalid {NO_DEFAULT_ATTESTATIONS_ENV}: {_parse_bool_error(value)}",
            hint=f"set {NO_DEFAULT_ATTESTATIONS_ENV} to true or false",
        )
    return parsed


def parse_attestations(
    attests: Iterable[str] = (),
    provenance: str | None = None,
    sbom: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Attestations:
    """`--attest` values, `--provenance` and `--sbom` (None or "" when not given) and the
    environment (os.environ when None), as buildx and BuildKit read them together."""
    values = list(attests)
    if provenance:
        values.append(canonicalize("provenance", provenance))
    if sbom:
        values.append(canonicalize("sbom", sbom))
    chosen: dict[str, Attest] = {}
    for text in values:
        attest = parse_attest(text)
        chosen.setdefault(attest.type, attest)  # buildx's ToMap keeps the first of a type
    for kind in chosen:
        if kind not in ("provenance", "sbom"):
            raise UsageError(
                f'unknown attestation type "{kind}"', hint="use type=provenance or type=sbom"
            )
    prov = chosen.get("provenance")
    sb = chosen.get("sbom")
    result_prov: ProvenanceOptions | None = None
    is_default = False
    if prov is None:
        if not no_default_attestations(env if env is not None else os.environ):
            result_prov, is_default = DEFAULT_PROVENANCE, True
    elif not prov.disabled:
        result_prov = provenance_options(prov.attrs)
    result_sbom = sbom_options(sb.attrs) if sb is not None and not sb.disabled else None
    requested = {kind: a.csv() for kind, a in chosen.items() if not a.disabled}
    return Attestations(result_prov, result_sbom, is_default, requested)


Exporter = Literal["image", "oci", "docker", "local", "tar"]


def attached_to(
    inline_only: bool, exporter: str, *, multi_platform: bool, force_inline: bool | None = None
) -> bool:
    """Whether an attestation reaches an output, as BuildKit's exporters decide.

    `image` (a store or registry image) attaches every attestation, making a single platform an
    index (its `attestation-inline` defaults to true); `oci` and `docker` archives attach an
    inline-only attestation (buildx's default provenance) only when the result is an index
    anyway (several platforms); `local` and `tar` write attestations as files, never the
    inline-only ones. `force_inline` is the exporter's `attestation-inline` option when given.
    """
    if exporter in ("local", "tar"):
        return not inline_only
    if exporter in ("image", "oci", "docker"):
        force = force_inline if force_inline is not None else exporter == "image"
        return multi_platform or force or not inline_only
    return False
