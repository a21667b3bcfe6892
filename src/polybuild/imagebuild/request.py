"""What a build is asked to do (the CLI's and the Python API's common shape), and its result."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from polybuild.attest.options import Attestations
from polybuild.cache.spec import CacheSpec, Direction, parse_caches
from polybuild.errors import UsageError
from polybuild.exporters.spec import OutputSpec, parse_outputs
from polybuild.graph.devices import parse_device_grant
from polybuild.imagebuild.add_hosts import parse_add_hosts
from polybuild.imagebuild.build_contexts import NamedContext, parse_build_contexts
from polybuild.imagebuild.context_url import UNFETCHED, is_remote
from polybuild.imagebuild.run_limits import parse_shm_size, parse_ulimits
from polybuild.platforms import Platform, default_platform, format_platform, parse_list
from polybuild.solver.secrets import BuildSecrets

if TYPE_CHECKING:
    # Only BuildResult's annotations name them: a request is parsed before any image exists.
    from polybuild.image.descriptor import Descriptor
    from polybuild.image.platform_image import PlatformImage

ENTITLEMENTS = ("security.insecure", "network.host", "device")


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """One `polybuild build`, fully parsed: every later step reads these values and none
    parses a flag again. Make one with `make_request`, which takes buildx's flag syntax."""

    context: Path
    platforms: tuple[Platform, ...]  # never empty: this machine's platform by default
    outputs: tuple[OutputSpec, ...] = ()  # -o, --push, --load, -t and --annotation merged
    dockerfile: Path | None = None  # default: CONTEXT/Dockerfile
    dockerfile_text: bytes | None = None  # `-f -`
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    secrets: BuildSecrets = field(default_factory=BuildSecrets)  # --secret and --ssh
    network: str = "default"
    entitlements: frozenset[str] = frozenset()  # --allow
    source_date_epoch: int | None = None  # --build-arg or environment SOURCE_DATE_EPOCH
    progress: str = "auto"
    iidfile: Path | None = None
    metadata_file: Path | None = None
    report: Path | None = None  # --report: the build's timeline report (HTML, or .json)
    jobs: int | None = None
    call: str = "build"  # "build", or "graph" to print the build graph without building
    builder: str = ""  # --builder (default: $BUILDX_BUILDER or the one `polybuild use` chose)
    check_reproducible: bool = False  # build each platform twice and compare, before output
    cache_to: tuple[CacheSpec, ...] = ()  # --cache-to
    cache_from: tuple[CacheSpec, ...] = ()  # --cache-from
    build_contexts: tuple[NamedContext, ...] = ()  # --build-context
    add_hosts: tuple[tuple[str, str], ...] = ()  # --add-host: (host, ip) for RUN steps
    # CONTEXT as given when it is `-` or a git or HTTP(S) URL; for a URL `context` stays
    # UNFETCHED until imagebuild/context_source brings it here (a BuildKit daemon fetches it)
    context_source: str = ""
    ulimits: tuple[tuple[str, int, int], ...] = ()  # --ulimit: (name, soft, hard)
    shm_size: int | None = None  # --shm-size in bytes (None: 64 MiB, as Docker)
    # --provenance/--sbom/--attest with buildx's default (min provenance; the CLI's); none
    # for API callers that do not ask
    attestations: Attestations = field(default_factory=Attestations)


@dataclass(frozen=True, slots=True)
class BuildResult:
    """What a build produced: the index (when images were assembled) and per-platform images."""

    index: Descriptor | None
    images: tuple[PlatformImage, ...]  # one per target platform, in request order
    executed: tuple[str, ...]  # op digests that ran (not cached)
    emulated_seconds: tuple[tuple[str, float], ...] = ()  # (op digest, seconds) under QEMU
    outline: str = ""  # --print graph: the printed graph


def make_request(
    context: str | Path,
    *,
    platforms: Sequence[str | Platform] = (),
    tags: Sequence[str] = (),
    outputs: Sequence[str] = (),
    push: bool = False,
    load: bool = False,
    annotations: Sequence[str] = (),
    dockerfile: str | Path | None = None,
    dockerfile_text: bytes | None = None,
    build_args: Mapping[str, str] | None = None,
    target: str = "",
    labels: Mapping[str, str] | None = None,
    no_cache: bool = False,
    no_cache_filter: Sequence[str] = (),
    pull: bool = False,
    secrets: Sequence[str] = (),
    ssh: Sequence[str] = (),
    network: str = "default",
    allow: Sequence[str] = (),
    progress: str = "auto",
    iidfile: str | Path | None = None,
    metadata_file: str | Path | None = None,
    report: str | Path | None = None,
    jobs: int | None = None,
    call: str = "build",
    builder: str = "",
    check_reproducible: bool = False,
    cache_to: Sequence[str] = (),
    cache_from: Sequence[str] = (),
    build_contexts: Sequence[str] = (),
    add_hosts: Sequence[str] = (),
    ulimits: Sequence[str] = (),
    shm_size: str | None = None,
    attestations: Attestations | None = None,
) -> BuildRequest:
    """Parse `docker buildx build`'s flag values into a BuildRequest; UsageError naming the
    flag for a bad value. Every argument has that flag's syntax and meaning."""
    parsed = parse_list([p if isinstance(p, str) else format_platform(p) for p in platforms])
    args = dict(build_args or {})
    epoch = source_date_epoch(args)
    if epoch is not None:
        args.setdefault("SOURCE_DATE_EPOCH", str(epoch))
    if network not in ("default", "host", "none"):
        raise UsageError(f"--network: unknown mode {network!r}", hint="use default, host or none")
    entitlements = parse_entitlements(allow)
    if check_reproducible and epoch is None:
        raise UsageError(
            "--check-reproducible needs SOURCE_DATE_EPOCH: without it every build stamps "
            "its own time into the image",
            hint="set SOURCE_DATE_EPOCH (e.g. to $(git log -1 --format=%ct)) in the "
            "environment or with --build-arg",
        )
    if network == "host" and "network.host" not in entitlements:
        raise UsageError(
            "--network=host is not allowed",
            hint="grant it with --allow network.host (RUN steps then share this machine's "
            "network, including services bound to its 127.0.0.1)",
        )
    context_source = ""
    if isinstance(context, str) and not os.path.isdir(context) and is_remote(context):
        context_source, context = context, UNFETCHED
    return BuildRequest(
        context=Path(context),
        context_source=context_source,
        platforms=parsed or (default_platform(),),
        outputs=tuple(
            parse_outputs(outputs, push=push, load=load, tags=tags, annotations=annotations)
        ),
        dockerfile=Path(dockerfile) if dockerfile is not None else None,
        dockerfile_text=dockerfile_text,
        build_args=args,
        target=target,
        labels=dict(labels or {}),
        no_cache=no_cache,
        no_cache_filter=tuple(no_cache_filter),
        pull=pull,
        secrets=parse_secrets(tuple(secrets), tuple(ssh)),
        network=network,
        entitlements=entitlements,
        source_date_epoch=epoch,
        progress=progress,
        iidfile=Path(iidfile) if iidfile is not None else None,
        metadata_file=Path(metadata_file) if metadata_file is not None else None,
        report=Path(report) if report is not None else None,
        jobs=jobs,
        call=call,
        builder=builder,
        check_reproducible=check_reproducible,
        cache_to=parse_caches(cache_to, Direction.EXPORT),
        cache_from=parse_caches(cache_from, Direction.IMPORT),
        build_contexts=parse_build_contexts(build_contexts),
        add_hosts=parse_add_hosts(add_hosts),
        ulimits=parse_ulimits(ulimits),
        shm_size=parse_shm_size(shm_size),
        attestations=attestations or Attestations(),
    )


def source_date_epoch(build_args: Mapping[str, str]) -> int | None:
    """SOURCE_DATE_EPOCH from --build-arg or the environment (BuildKit reads both)."""
    value = build_args.get("SOURCE_DATE_EPOCH") or os.environ.get("SOURCE_DATE_EPOCH")
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise UsageError(f"SOURCE_DATE_EPOCH must be whole seconds since 1970, not {value!r}")
    return int(value)


def parse_entitlements(allow: Sequence[str]) -> frozenset[str]:
    """`--allow` values (comma-separated lists too), each a known entitlement; `device`
    alone grants every CDI device, `device=NAME[,alias=A]` one (its commas are its own)."""
    found: set[str] = set()
    for value in allow:
        if value.startswith("device="):
            parse_device_grant(value.removeprefix("device="))
            found.add(value)
            continue
        for item in (part.strip() for part in value.split(",")):
            if item not in ENTITLEMENTS:
                raise UsageError(
                    f"--allow: unknown entitlement {item!r}",
                    hint="entitlements: " + ", ".join(ENTITLEMENTS),
                )
            found.add(item)
    return frozenset(found)


def _csv(spec: str, flag: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"{flag}: invalid value {spec!r}: expected key=value pairs")
        fields[key.strip()] = value.strip()
    return fields


MAX_SECRET_SIZE = 500 << 10  # BuildKit's limit


def parse_secrets(specs: tuple[str, ...], ssh: tuple[str, ...]) -> BuildSecrets:
    """`--secret id=X[,src=FILE|env=VAR][,type=file|env]` as buildx and BuildKit read it (a
    bare `id=X` is the environment variable X when set, else the file X) and `--ssh
    default|ID[=SOCKET|KEYFILE[,KEYFILE...]]` (key files are served by an agent)."""
    secrets: dict[str, bytes] = {}
    for spec in specs:
        fields = _csv(spec, "--secret")
        secret_id = fields.get("id") or ""
        source = fields.get("src") or fields.get("source") or ""
        env_name = fields.get("env") or ""
        kind = fields.get("type", "")
        if kind not in ("", "file", "env"):
            raise UsageError(f"--secret {spec}: unsupported secret type {kind!r}")
        if kind == "env" and not env_name:
            env_name, source = source, ""
        if not (source or env_name):
            env_name, source = (secret_id, "") if secret_id in os.environ else ("", secret_id)
        if env_name and not source:
            if env_name not in os.environ:
                raise UsageError(f"--secret {spec}: environment variable {env_name} is not set")
            value = os.environ[env_name].encode()
        else:
            path = Path(source).expanduser()
            try:
                if path.stat().st_size > MAX_SECRET_SIZE:
                    raise UsageError(
                        f"--secret {spec}: secret {secret_id} too big. max size 500KiB"
                    )
                value = path.read_bytes()
            except OSError as exc:
                raise UsageError(f"--secret {spec}: cannot read {source}: {exc.strerror}") from exc
        if len(value) > MAX_SECRET_SIZE:
            raise UsageError(f"--secret {spec}: secret {secret_id} too big. max size 500KiB")
        secrets[secret_id or Path(source or env_name).name] = value
    sockets: dict[str, str] = {}
    keys: dict[str, tuple[str, ...]] = {}
    for spec in ssh:
        ident, _, paths = spec.partition("=")
        ident = ident or "default"
        given = [p for p in paths.split(",") if p] or [os.environ.get("SSH_AUTH_SOCK", "")]
        if not given[0]:
            raise UsageError(f"--ssh {spec}: no socket given and SSH_AUTH_SOCK is not set")
        for item in given:
            if not Path(item).exists():
                raise UsageError(f"--ssh {spec}: {item} does not exist")
        if len(given) == 1 and stat.S_ISSOCK(Path(given[0]).stat().st_mode):
            sockets[ident] = given[0]
        elif any(not Path(p).is_file() for p in given):
            raise UsageError(f"--ssh {spec}: give one agent socket or key files")
        else:
            keys[ident] = tuple(str(Path(p).absolute()) for p in given)
    return BuildSecrets(secrets, sockets, keys)
