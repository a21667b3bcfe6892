"""`polybuild build`: docker buildx build's flags, for many platforms at once."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
from pathlib import Path

import click

from polybuild.errors import UsageError

UNSUPPORTED = ("cgroup_parent",)


def _key_values(items: tuple[str, ...], flag: str, *, from_env: bool = True) -> dict[str, str]:
    """K=V values; a bare K takes K's value from the environment when set (`--build-arg`),
    or is an empty value (`--label K`, `from_env=False`), as buildx."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key:
            raise UsageError(f"{flag}: invalid value {item!r}")
        if not sep and from_env:
            if key not in os.environ:
                continue
            value = os.environ[key]
        result[key] = value
    return result


def _platforms(values: tuple[str, ...]) -> list[str]:
    """--platform values as buildx reads them: `local` is this machine's platform, and
    without the flag $DOCKER_DEFAULT_PLATFORM is the default."""
    from polybuild.platforms import default_platform, format_platform

    if not values and os.environ.get("DOCKER_DEFAULT_PLATFORM"):
        values = (os.environ["DOCKER_DEFAULT_PLATFORM"],)
    here = format_platform(default_platform())
    return [
        ",".join(here if p.strip() == "local" else p for p in value.split(",")) for value in values
    ]


@click.command("build")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="PLATFORMS",
    help="Target platforms, comma separated (linux/amd64,linux/arm64,linux/arm/v7).",
)
@click.option("-t", "--tag", "tags", multiple=True, metavar="NAME[:TAG]", help="Image name.")
@click.option(
    "-f",
    "--file",
    "file",
    metavar="PATH",
    help="Dockerfile (default CONTEXT/Dockerfile; - for stdin).",
)
@click.option(
    "--build-arg", "build_args", multiple=True, metavar="K=V", help="Build-time variable."
)
@click.option("--target", default="", metavar="STAGE", help="Build this stage.")
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    metavar="SPEC",
    help="Output: type=image|oci|docker|local|tar|registry[,dest=...][,...]",
)
@click.option("--push", is_flag=True, help="Shorthand for --output=type=registry.")
@click.option("--load", is_flag=True, help="Shorthand for --output=type=image (local store).")
@click.option("--label", "labels", multiple=True, metavar="K=V", help="Image label.")
@click.option("--annotation", "annotations", multiple=True, metavar="K=V", help="Annotation.")
@click.option("--no-cache", is_flag=True, help="Do not use the build cache.")
@click.option(
    "--no-cache-filter", multiple=True, metavar="STAGE", help="Do not cache these stages."
)
@click.option("--pull", is_flag=True, help="Always look for newer base images in the registry.")
@click.option(
    "--check-reproducible",
    is_flag=True,
    help="Build each platform twice (on another node when one runs it) and fail if the "
    "images differ, naming the first differing file. Needs SOURCE_DATE_EPOCH.",
)
@click.option(
    "--secret",
    "secrets",
    multiple=True,
    metavar="id=ID,src=FILE|env=VAR",
    help="Secret for RUN --mount=type=secret.",
)
@click.option(
    "--ssh", multiple=True, metavar="default|ID=SOCKET", help="SSH agent for RUN --mount=type=ssh."
)
@click.option(
    "--network",
    default="default",
    type=click.Choice(["default", "host", "none"]),
    help="Network for RUN steps.",
)
@click.option(
    "--progress",
    default=None,
    metavar="MODE",
    help="auto, tty, plain, rawjson or quiet (default $BUILDKIT_PROGRESS or auto).",
)
@click.option("-q", "--quiet", is_flag=True, help="Print only the image digest.")
@click.option("--iidfile", type=click.Path(dir_okay=False), help="Write the image ID to a file.")
@click.option(
    "--metadata-file", type=click.Path(dir_okay=False), help="Write build metadata (JSON)."
)
@click.option(
    "--report",
    type=click.Path(dir_okay=False),
    help="Write the build's timeline report: one self-contained HTML page (JSON for a .json "
    "path), also after a failed build. polybuild's own flag.",
)
@click.option(
    "--call",
    default="build",
    metavar="METHOD",
    help="build, check (lint the Dockerfile), outline (the target's build args, secrets and "
    "ssh) or targets; METHOD,format=json for JSON.",
)
@click.option("--check", "check_", is_flag=True, help="Shorthand for --call=check.")
@click.option(
    "--print",
    "print_",
    default=None,
    metavar="METHOD|graph",
    help="As --call; `graph` prints polybuild's build graph for each platform.",
)
@click.option("--builder", default="", metavar="NAME", help="Build with this builder.")
@click.option("-j", "--jobs", type=int, default=None, help="Steps at once (default: CPUs).")
@click.option(
    "--provenance",
    default=None,
    metavar="VALUE",
    help="Shorthand for --attest=type=provenance (true, false, mode=min|max[,version=v1|v0.2]).",
)
@click.option(
    "--sbom", default=None, metavar="VALUE", help="Shorthand for --attest=type=sbom (true, false)."
)
@click.option(
    "--cache-from",
    multiple=True,
    metavar="SPEC",
    help="Import build cache (REF = type=registry,ref=REF; type=local,src=DIR).",
)
@click.option(
    "--cache-to",
    multiple=True,
    metavar="SPEC",
    help="Export build cache (type=registry,ref=R[,mode=max]; type=local,dest=DIR; type=inline).",
)
@click.option(
    "--attest",
    multiple=True,
    metavar="SPEC",
    help='Attestation parameters ("type=provenance,mode=max", "type=sbom").',
)
@click.option(
    "--build-context",
    "build_contexts",
    multiple=True,
    metavar="NAME=DIR|docker-image://REF|URL",
    help="Replace a stage or image named in FROM (BuildKit nodes for now).",
)
@click.option(
    "--add-host",
    "add_hosts",
    multiple=True,
    metavar="HOST:IP",
    help="Add a host to RUN steps' /etc/hosts.",
)
@click.option(
    "--allow",
    multiple=True,
    metavar="ENTITLEMENT",
    help="Allow an entitlement: network.host, security.insecure, device (every CDI device "
    "for RUN --device) or device=NAME[,alias=A].",
)
@click.option(
    "--ulimit", "ulimits", multiple=True, metavar="NAME=SOFT[:HARD]", help="Ulimit of RUN steps."
)
@click.option("--shm-size", default=None, metavar="SIZE", help="Size of RUN steps' /dev/shm.")
@click.option("--cgroup-parent", default=None, hidden=True)
@click.option("--rm", "legacy_rm", is_flag=True, hidden=True)
@click.option("--force-rm", "legacy_force_rm", is_flag=True, hidden=True)
@click.option("--compress", "legacy_compress", is_flag=True, hidden=True)
@click.option("--squash", "legacy_squash", is_flag=True, hidden=True)
@click.option("--isolation", "legacy_isolation", default=None, hidden=True)
@click.option("--security-opt", "legacy_security_opt", multiple=True, hidden=True)
@click.option("-m", "--memory", "legacy_memory", default=None, hidden=True)
@click.option("--memory-swap", "legacy_memory_swap", default=None, hidden=True)
@click.option("-c", "--cpu-shares", "legacy_cpu_shares", default=None, hidden=True)
@click.option("--cpu-period", "legacy_cpu_period", default=None, hidden=True)
@click.option("--cpu-quota", "legacy_cpu_quota", default=None, hidden=True)
@click.option("--cpuset-cpus", "legacy_cpuset_cpus", default=None, hidden=True)
@click.option("--cpuset-mems", "legacy_cpuset_mems", default=None, hidden=True)
@click.argument("context", metavar="CONTEXT", type=click.Path())
def command(**kw: object) -> None:
    """Build images for one or more platforms from a Dockerfile and a context: a directory,
    `-` (a tar archive or a Dockerfile on stdin), a git URL or an HTTP(S) tarball's URL."""
    with contextlib.ExitStack() as stack:
        _command(kw, stack)


def _command(kw: dict[str, object], stack: contextlib.ExitStack[bool | None]) -> None:
    from polybuild.cli.build_run import run_build
    from polybuild.imagebuild.request import make_request

    _legacy_notices(kw)
    for name in UNSUPPORTED:
        if kw.get(name):
            flag = "--" + name.replace("_", "-")
            raise UsageError(
                f"{flag} is not supported by polybuild yet",
                hint=f"drop {flag}; see the README for what is supported",
            )
    from polybuild.attest.options import parse_attestations

    attestations = parse_attestations(
        tuple(kw["attest"]),  # type: ignore[arg-type]
        str(kw["provenance"]) if kw["provenance"] is not None else None,
        str(kw["sbom"]) if kw["sbom"] is not None else None,
    )
    file_value = kw["file"]
    context, dockerfile, dockerfile_text = _context(str(kw["context"]), file_value, stack)
    call = str(kw["print_"] or kw["call"])  # buildx's hidden --print sets --call's value
    if kw["check_"]:
        call = "check"
    call, call_format = _call_spec(call)
    if call not in ("build", "outline", "check", "targets", "graph"):
        raise UsageError(
            f"--call: unsupported method {call!r}", hint="use build, check, targets or outline"
        )
    if call_format == "json" and call not in ("check", "targets", "outline"):
        raise UsageError(f"--call: format=json is not supported for {call}", hint="drop it")
    progress, quiet = _progress_mode(
        str(kw["progress"] or os.environ.get("BUILDKIT_PROGRESS") or "auto"), bool(kw["quiet"])
    )
    request = make_request(
        context,
        dockerfile=dockerfile,
        dockerfile_text=dockerfile_text,
        platforms=_platforms(tuple(kw["platforms"])),  # type: ignore[arg-type]
        build_args=_key_values(kw["build_args"], "--build-arg"),  # type: ignore[arg-type]
        target=str(kw["target"]),
        tags=tuple(kw["tags"]),  # type: ignore[arg-type]
        outputs=tuple(kw["outputs"]),  # type: ignore[arg-type]
        push=bool(kw["push"]),
        load=bool(kw["load"]),
        labels=_key_values(kw["labels"], "--label", from_env=False),  # type: ignore[arg-type]
        annotations=tuple(kw["annotations"]),  # type: ignore[arg-type]
        no_cache=bool(kw["no_cache"]),
        no_cache_filter=tuple(kw["no_cache_filter"]),  # type: ignore[arg-type]
        pull=bool(kw["pull"]),
        secrets=tuple(kw["secrets"]),  # type: ignore[arg-type]
        ssh=tuple(kw["ssh"]),  # type: ignore[arg-type]
        network=str(kw["network"]),
        allow=tuple(kw["allow"]),  # type: ignore[arg-type]
        progress=progress,
        iidfile=str(kw["iidfile"]) if kw["iidfile"] else None,
        metadata_file=str(kw["metadata_file"]) if kw["metadata_file"] else None,
        report=str(kw["report"]) if kw["report"] else None,
        jobs=kw["jobs"],  # type: ignore[arg-type]
        call=call,
        builder=str(kw["builder"]),
        check_reproducible=bool(kw["check_reproducible"]),
        cache_to=tuple(kw["cache_to"]),  # type: ignore[arg-type]
        cache_from=tuple(kw["cache_from"]),  # type: ignore[arg-type]
        build_contexts=tuple(kw["build_contexts"]),  # type: ignore[arg-type]
        add_hosts=tuple(kw["add_hosts"]),  # type: ignore[arg-type]
        ulimits=tuple(kw["ulimits"]),  # type: ignore[arg-type]
        shm_size=str(kw["shm_size"]) if kw["shm_size"] else None,
        attestations=attestations,
    )
    if request.iidfile is not None:
        _check_iidfile(request.iidfile, [o.type.value for o in request.outputs])
    if request.report is not None:
        _check_report(request.report)
    if kw["context"] == "-":
        request = dataclasses.replace(request, context_source="-")
    if call == "targets":
        from polybuild.imagebuild.context_source import fetched_context
        from polybuild.imagebuild.targets_call import run_targets

        request = stack.enter_context(fetched_context(request))
        sys.exit(run_targets(request, json_format=call_format == "json"))
    if call == "outline":
        from polybuild.imagebuild.context_source import fetched_context
        from polybuild.imagebuild.outline_call import run_outline

        request = stack.enter_context(fetched_context(request))
        sys.exit(run_outline(request, json_format=call_format == "json"))
    if call == "check":
        from polybuild.imagebuild.check_call import run_check
        from polybuild.imagebuild.context_source import fetched_context

        request = stack.enter_context(fetched_context(request))
        sys.exit(run_check(request, json_format=call_format == "json"))
    sys.exit(run_build(request, quiet=quiet))


def _context(
    value: str, file_value: object, stack: contextlib.ExitStack[bool | None]
) -> tuple[str, Path | None, bytes | None]:
    """CONTEXT, -f and the Dockerfile's text as make_request takes them. `-` is stdin (a tar
    archive or a Dockerfile) brought into a scratch directory that `stack` removes; with a
    tar on stdin, a relative -f names a file in it, as buildx."""
    dockerfile = Path(str(file_value)) if file_value and file_value != "-" else None
    if value != "-":
        return value, dockerfile, sys.stdin.buffer.read() if file_value == "-" else None
    from polybuild.imagebuild.context_source import stdin_context

    given = str(file_value) if file_value else None
    got = stack.enter_context(stdin_context(sys.stdin.buffer, dockerfile=given))
    if dockerfile is not None and not dockerfile.is_absolute():
        dockerfile = got.directory / dockerfile
    return str(got.directory), dockerfile, got.dockerfile_text


def _call_spec(value: str) -> tuple[str, str]:
    """buildx's --call value: `NAME[,format=text|json]`; `lint` is check's other name."""
    name, *options = (part.strip() for part in value.split(","))
    call_format = "text"
    for option in options:
        key, sep, setting = option.partition("=")
        if key != "format" or not sep or setting not in ("text", "json"):
            raise UsageError(
                f"--call: invalid option {option!r}", hint="use format=text or format=json"
            )
        call_format = setting
    return ("check" if name == "lint" else name), call_format


# docker build's flags that buildx accepts for scripts and ignores, and what it says of them.
_LEGACY = {
    "legacy_rm": "",
    "legacy_force_rm": "",
    "legacy_compress": "",
    "legacy_isolation": "isolation flag is deprecated with BuildKit.",
    "legacy_security_opt": 'security-opt flag is deprecated. "RUN --security=insecure" '
    "should be used with BuildKit.",
    "legacy_squash": "experimental flag squash is removed with BuildKit. You should squash "
    "inside build using a multi-stage Dockerfile for efficiency.",
}
_RESOURCES = ("memory", "memory_swap", "cpu_shares", "cpu_period", "cpu_quota",
              "cpuset_cpus", "cpuset_mems")  # fmt: skip


def _legacy_notices(kw: dict[str, object]) -> None:
    """One line on stderr for each legacy flag given (they change nothing)."""
    for name, words in _LEGACY.items():
        if kw.get(name):
            flag = "--" + name.removeprefix("legacy_").replace("_", "-")
            click.echo(f"WARNING: {words or f'{flag} is accepted and ignored'}", err=True)
    for name in _RESOURCES:
        if kw.get(f"legacy_{name}") is not None:
            flag = "--" + name.replace("_", "-")
            click.echo(
                f"WARNING: {flag}: polybuild does not limit build containers' resources yet; "
                "ignored",
                err=True,
            )


def _progress_mode(progress: str, quiet: bool) -> tuple[str, bool]:
    """The display mode and whether the image ID is printed at the end, as buildx: -q and
    --progress=quiet print it; --progress=none shows nothing and prints nothing; -q with
    another display is an error."""
    if progress == "quiet":
        quiet = True
    if progress == "none":
        progress = "quiet"
    if quiet:
        if progress not in ("auto", "quiet"):
            raise UsageError(f"progress={progress} and quiet cannot be used together")
        progress = "quiet"
    return progress, quiet


def _check_report(path: Path) -> None:
    """--report's file can be written once the build ends: checked before it starts."""
    if path.is_dir():
        raise UsageError(f"--report {path}: is a directory", hint="give the report's file name")
    if not path.parent.is_dir():
        raise UsageError(f"--report {path}: no directory {path.parent}")


def _check_iidfile(path: Path, types: list[str]) -> None:
    """buildx's rules for --iidfile: no local or tar output, and an old file is removed
    before the build (a failed build leaves none)."""
    if any(t in ("local", "tar") for t in types):
        raise UsageError("local and tar exporters are incompatible with image ID file")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise UsageError(f"--iidfile {path}: removing image ID file: {exc.strerror}") from None
