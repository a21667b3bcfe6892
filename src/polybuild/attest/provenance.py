"""SLSA provenance predicates (v1 and v0.2) of one platform's build, shaped, ordered and
filtered as BuildKit's provenance processor writes them (solver/llbsolver/provenance*):
the frontend request (args filtered; mode=min drops build-arg:/label: values, secrets and
ssh), the config source, base images, git and HTTP sources as resolved dependencies
(materials), timestamps, completeness, and with mode=max the build definition (polybuild's
steps with their Dockerfile lines) and each step's layers."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

from polybuild.attest import gojson
from polybuild.attest.intoto import Statement, Subject, package_url
from polybuild.attest.options import ProvenanceOptions
from polybuild.image.descriptor import Descriptor
from polybuild.image.digest import Digest
from polybuild.platforms import Platform, format_platform, normalize

BUILD_TYPE_V1: Final = (
    "https://github.com/moby/buildkit/blob/master/docs/attestations/slsa-definitions.md"
)
BUILD_TYPE_V02: Final = "https://mobyproject.org/buildkit@v1"
DOCKERFILE_FRONTEND: Final = "dockerfile.v0"
COMPATIBILITY_VERSION: Final = 30  # BuildKit's current; OCI types and OCI-artifact attestations
# Frontend attributes BuildKit keeps out of provenance (FilterArgs): they depend on the host.
_HOST_SPECIFIC: Final = frozenset(
    {"cgroup-parent", "image-resolve-mode", "platform", "cache-imports"}
)


@dataclass(frozen=True, slots=True)
class ImageMaterial:
    """A base image: its reference as the frontend resolved it (normalised, e.g.
    `docker.io/library/busybox:latest`), the platform asked for, and the digest the reference
    resolved to (an index's digest for a multi-platform image, as BuildKit records it, not the
    platform's manifest); `local`: from a local store or layout (purl type `oci`)."""

    ref: str
    digest: Digest | None
    platform: Platform | None = None
    local: bool = False


@dataclass(frozen=True, slots=True)
class GitMaterial:
    url: str
    commit: str


@dataclass(frozen=True, slots=True)
class HTTPMaterial:
    url: str
    digest: Digest


@dataclass(frozen=True, slots=True)
class SecretUse:
    """A secret or ssh socket a step mounted: named, never valued."""

    id: str
    optional: bool = False


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the build definition (mode=max): polybuild's op as JSON-able values, its
    inputs as (step index, output index), the Dockerfile line ranges it came from and the
    layer chain of its result (bottom first), if it made one."""

    digest: Digest
    op: Mapping[str, Any]
    inputs: tuple[tuple[int, int], ...] = ()
    lines: tuple[tuple[int, int], ...] = ()
    layers: tuple[Descriptor, ...] = ()


@dataclass(frozen=True, slots=True)
class BuildRecord:
    """What one platform's build did, as the provenance needs it.

    `frontend_attrs`: the frontend options as BuildKit's keys (`build-arg:NAME`, `label:NAME`,
    `target`, `filename`, `context` for a URL context ...); `locals`: local sources by name
    (`context`, `dockerfile`, named contexts); `dockerfile`: (file name, bytes) for mode=max.
    """

    builder_platform: Platform
    started: datetime
    finished: datetime
    invocation_id: str
    frontend: str = DOCKERFILE_FRONTEND
    frontend_attrs: Mapping[str, str] = field(default_factory=dict, hash=False)
    locals: tuple[str, ...] = ("context", "dockerfile")
    images: tuple[ImageMaterial, ...] = ()
    git: tuple[GitMaterial, ...] = ()
    http: tuple[HTTPMaterial, ...] = ()
    secrets: tuple[SecretUse, ...] = ()
    ssh: tuple[SecretUse, ...] = ()
    network_access: bool = False
    dockerfile_version: str = ""
    steps: tuple[Step, ...] = ()
    dockerfile: tuple[str, bytes] | None = None
    started_ns: int | None = None  # nanoseconds of `started`'s second, when known
    finished_ns: int | None = None
    compatibility_version: int = COMPATIBILITY_VERSION


def redact_credentials(url: str) -> str:
    """BuildKit's urlutil.RedactCredentials: a password in a URL becomes `xxxxx`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{user}:xxxxx@{host}"))


def filter_args(attrs: Mapping[str, str]) -> dict[str, str]:
    """FilterArgs: host-specific options and attest:* dropped, the context's URL redacted."""
    context_key = attrs.get("contextkey") or "context"
    out = {}
    for key, value in attrs.items():
        if key in _HOST_SPECIFIC or key.startswith("attest:"):
            continue
        redact = key == context_key or key.startswith("context:")
        out[key] = redact_credentials(value) if redact else value
    return out


def _digest_set(digest: Digest) -> dict[str, str]:
    return {digest.algorithm: digest.hex}


def _commit_digest(commit: str) -> dict[str, str]:
    return {"sha256" if len(commit) == 64 else "sha1": commit}


def materials(record: BuildRecord) -> list[dict[str, Any]]:
    """Images, git and HTTP sources as [{uri, digest}] (slsaMaterials)."""
    out: list[dict[str, Any]] = []
    for image in record.images:
        item: dict[str, Any] = {
            "uri": package_url("oci" if image.local else "docker", image.ref, image.platform)
        }
        if image.digest is not None:
            item["digest"] = _digest_set(image.digest)
        out.append(item)
    out += [{"uri": g.url, "digest": _commit_digest(g.commit)} for g in record.git]
    out += [{"uri": h.url, "digest": _digest_set(h.digest)} for h in record.http]
    return out


def _config_source(
    args: dict[str, str], record: BuildRecord
) -> tuple[dict[str, Any], dict[str, str]]:
    """RequestProvenance: the context (a git or HTTP source matched to its material) and the
    Dockerfile path taken out of the args."""
    args = dict(args)
    source: dict[str, Any] = {}
    context_key = "context"
    if args.get("contextkey"):
        context_key = args["contextkey"]
    elif args.get("input:context"):
        context_key = "input:context"
    context = args.pop(context_key, "")
    if context:
        uri, digest = context, None
        bare = context.split("#", 1)[0]
        for g in record.git:
            if g.url == bare:
                uri, digest = context, _commit_digest(g.commit)
        for h in record.http:
            if h.url == context:
                digest = _digest_set(h.digest)
        source["uri"] = redact_credentials(uri)
        if digest:
            source["digest"] = digest
    if args.get("filename"):
        source["path"] = args.pop("filename")
    return source, args


def _request(
    record: BuildRecord, args: dict[str, str], options: ProvenanceOptions
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """externalParameters.request (Go field order), the configSource, and whether the request
    is complete (mode=min drops build args and labels)."""
    source, args = _config_source(args, record)
    complete = bool(record.frontend)
    secrets, ssh = record.secrets, record.ssh
    if options.mode == "min":
        kept = {k: v for k, v in args.items() if not k.startswith(("build-arg:", "label:"))}
        if len(kept) != len(args):
            complete = False
        args, secrets, ssh = kept, (), ()
    request: dict[str, Any] = {}
    if record.frontend:
        request["frontend"] = record.frontend
    if args:
        request["args"] = dict(sorted(args.items()))
    if secrets:
        request["secrets"] = [_named(s) for s in secrets]
    if ssh:
        request["ssh"] = [_named(s) for s in ssh]
    if record.locals:
        request["locals"] = [{"name": name} for name in record.locals]
    root: dict[str, Any] = {"configSource": source, "request": {}}
    if args:
        root["request"]["args"] = dict(sorted(args.items()))
    request["root"] = root
    if record.compatibility_version:
        request["compatibilityVersion"] = record.compatibility_version
    return request, source, complete


def _named(use: SecretUse) -> dict[str, Any]:
    return {"id": use.id, "optional": True} if use.optional else {"id": use.id}


def _build_config(record: BuildRecord) -> dict[str, Any]:
    """BuildConfig: the steps (`llbDefinition`) and op digest -> step id, each left out when
    empty (Go's omitempty)."""
    steps = []
    for i, step in enumerate(record.steps):
        item: dict[str, Any] = {"id": f"step{i}", "op": dict(step.op)}
        if step.inputs:
            item["inputs"] = [f"step{s}:{o}" for s, o in step.inputs]
        steps.append(item)
    mapping = {str(s.digest): f"step{i}" for i, s in enumerate(record.steps)}
    out: dict[str, Any] = {}
    if steps:
        out["llbDefinition"] = steps
    if mapping:
        out["digestMapping"] = dict(sorted(mapping.items()))
    return out


def sorted_deep(value: Any) -> Any:
    """Every object's keys sorted, at every depth: what Go makes of a value marshalled through
    map[string]any (BuildKit does so for v1's internalParameters and v0.2's environment)."""
    if isinstance(value, dict):
        return {k: sorted_deep(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [sorted_deep(v) for v in value]
    return value


def _max_metadata(record: BuildRecord) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if record.dockerfile is not None:
        name, data = record.dockerfile
        locations = {}
        for i, step in enumerate(record.steps):
            ranges = [{"start": {"line": a}, "end": {"line": b}} for a, b in step.lines]
            locations[f"step{i}"] = {"locations": [{"ranges": ranges}]} if ranges else {}
        meta["source"] = {
            "locations": dict(sorted(locations.items())),
            "infos": [
                {
                    "filename": name,
                    "language": "Dockerfile",
                    "data": base64.b64encode(data).decode(),
                }
            ],
        }
    layers = {
        f"step{i}:0": [[_descriptor(d) for d in step.layers]]
        for i, step in enumerate(record.steps)
        if step.layers
    }
    if layers:
        meta["layers"] = dict(sorted(layers.items()))
    return meta


def _descriptor(d: Descriptor) -> dict[str, Any]:
    out: dict[str, Any] = {"mediaType": d.media_type, "digest": str(d.digest), "size": d.size}
    if d.annotations:
        out["annotations"] = dict(sorted(d.annotations.items()))
    return out


def predicate(record: BuildRecord, options: ProvenanceOptions) -> dict[str, Any]:
    """The predicate as Go values in BuildKit's field order, for `options.version`."""
    args = filter_args(record.frontend_attrs)
    vcs = {}
    for key in [k for k in args if k.startswith("vcs:")]:
        value = args.pop(key)
        if key == "vcs:source":
            value = redact_credentials(value)
        if value:
            vcs[key[len("vcs:") :]] = value
    request, source, complete_request = _request(record, args, options)
    deps = materials(record)
    incomplete = bool(record.locals)
    internal: dict[str, Any] = {
        "builderPlatform": format_platform(normalize(record.builder_platform))
    }
    buildkit_meta: dict[str, Any] = {}
    if vcs:
        buildkit_meta["vcs"] = dict(sorted(vcs.items()))
    if options.mode == "max":
        internal["buildConfig"] = _build_config(record)
        buildkit_meta.update(_max_metadata(record))
    if record.frontend == DOCKERFILE_FRONTEND and record.dockerfile_version:
        internal["dockerfileVersion"] = record.dockerfile_version
    hermetic = not incomplete and not record.network_access
    started = gojson.rfc3339_nano(record.started, record.started_ns)
    finished = gojson.rfc3339_nano(record.finished, record.finished_ns)
    if options.version == "v0.2":
        return _v02(options, deps, source, request, internal, buildkit_meta, record,
                    started, finished, complete_request, incomplete, hermetic)  # fmt: skip
    definition: dict[str, Any] = {"buildType": BUILD_TYPE_V1}
    if deps:
        definition["resolvedDependencies"] = deps
    definition["externalParameters"] = {"configSource": source, "request": request}
    definition["internalParameters"] = sorted_deep(internal)
    metadata: dict[str, Any] = {
        "invocationId": record.invocation_id,
        "startedOn": started,
        "finishedOn": finished,
        "buildkit_metadata": buildkit_meta,
    }
    if hermetic:
        metadata["buildkit_hermetic"] = True
    metadata["buildkit_completeness"] = {
        "request": complete_request,
        "resolvedDependencies": not incomplete,
    }
    if options.reproducible:
        metadata["buildkit_reproducible"] = True
    return {
        "buildDefinition": definition,
        "runDetails": {"builder": {"id": options.builder_id}, "metadata": metadata},
    }


def _v02(
    options: ProvenanceOptions,
    deps: list[dict[str, Any]],
    source: dict[str, Any],
    request: dict[str, Any],
    internal: dict[str, Any],
    buildkit_meta: dict[str, Any],
    record: BuildRecord,
    started: str,
    finished: str,
    complete_request: bool,
    incomplete: bool,
    hermetic: bool,
) -> dict[str, Any]:
    """ConvertToSLSA02: the same facts under v0.2's names."""
    out: dict[str, Any] = {"builder": {"id": options.builder_id}, "buildType": BUILD_TYPE_V02}
    if deps:
        out["materials"] = deps
    config_source = {{"path": "entryPoint"}.get(k, k): v for k, v in source.items()}
    environment = {k: v for k, v in internal.items() if k != "buildConfig"}
    environment["platform"] = environment.pop("builderPlatform")
    out["invocation"] = {
        "configSource": config_source,
        "parameters": request,
        "environment": sorted_deep(environment),
    }
    if "buildConfig" in internal:
        out["buildConfig"] = internal["buildConfig"]
    metadata: dict[str, Any] = {
        "buildInvocationID": record.invocation_id,
        "buildStartedOn": started,
        "buildFinishedOn": finished,
        "completeness": {
            "parameters": complete_request,
            "environment": True,
            "materials": not incomplete,
        },
        "reproducible": options.reproducible,
        "https://mobyproject.org/buildkit@v1#metadata": buildkit_meta,
    }
    if hermetic:
        metadata["https://mobyproject.org/buildkit@v1#hermetic"] = True
    out["metadata"] = metadata
    return out


def predicate_json(record: BuildRecord, options: ProvenanceOptions) -> bytes:
    """The predicate's bytes (BuildKit writes it with MarshalIndent; the statement compacts)."""
    return gojson.marshal_indent(predicate(record, options))


def provenance_statement(
    record: BuildRecord, options: ProvenanceOptions, subjects: Iterable[Subject]
) -> Statement:
    """The provenance statement of one platform's image (subjects: intoto.image_subjects)."""
    return Statement(options.predicate_type, tuple(subjects), predicate_json(record, options))
