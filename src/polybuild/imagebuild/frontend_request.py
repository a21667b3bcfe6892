"""A BuildRequest as the `dockerfile.v0` frontend request buildx makes of it: the value a
BuildKit node is sent (imagebuild/buildkit_driver.py) and the frontend attributes that
provenance lists for every build, whichever node ran it (imagebuild/attestations.py). One
mapping, so what provenance says was asked is what a daemon is asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

from polybuild.buildkit.dockerfile_build import DockerfileBuild
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, format_platform


def local_name(name: str) -> str:
    """The FileSync name of a named local context (never the build's own two, as buildx)."""
    return f"_{name}" if name in ("context", "dockerfile") else name


def named_sources(request: BuildRequest) -> dict[str, str]:
    """The frontend's `context:NAME` values: `local:` for a directory sent over the session,
    else the image or URL as given."""
    return {
        n.name: f"local:{local_name(n.name)}" if n.directory else n.value
        for n in request.build_contexts
    }


def dockerfile_build(
    request: BuildRequest,
    platforms: tuple[Platform, ...],
    *,
    context: Path,
    dockerfile_dir: Path,
    filename: str,
    remote_context: str = "",
    local_dockerfile: bool = True,
) -> DockerfileBuild:
    """What the frontend builds for `request`: the context and the Dockerfile's directory as
    the session serves them, `remote_context` a URL the daemon fetches itself."""
    return DockerfileBuild(
        context=context,
        dockerfile_dir=dockerfile_dir,
        filename=filename,
        remote_context=remote_context,
        local_dockerfile=local_dockerfile,
        platforms=tuple(format_platform(p) for p in platforms),
        build_args=dict(request.build_args),
        target=request.target,
        labels=dict(request.labels),
        no_cache=request.no_cache,
        no_cache_filter=request.no_cache_filter,
        pull=request.pull,
        network=request.network,
        entitlements=tuple(sorted(request.entitlements)),
        secrets=dict(request.secrets.secrets),
        ssh={ident: Path(socket) for ident, socket in request.secrets.ssh.items()},
        shared_key=hashlib.sha256(str(context).encode()).hexdigest(),
        source_date_epoch=request.source_date_epoch,
        add_hosts=request.add_hosts,
        ulimits=request.ulimits,
        shm_size=request.shm_size,
        named_contexts=named_sources(request),
        named_directories={
            local_name(n.name): n.directory for n in request.build_contexts if n.directory
        },
        cache_to=tuple((str(s.type), dict(s.attrs)) for s in request.cache_to),
        cache_from=tuple((str(s.type), dict(s.attrs)) for s in request.cache_from),
    )


def frontend_attrs(request: BuildRequest, filename: str) -> dict[str, str]:
    """The frontend attributes buildx sends for `request` (provenance filters out the
    host-specific ones: platform, image-resolve-mode, cache-imports). A git or HTTP(S)
    context is named by its URL; a Dockerfile given on stdin then travels beside it."""
    remote = request.context_source if request.context_source not in ("", "-") else ""
    build = dockerfile_build(
        request,
        request.platforms,
        context=request.context,
        dockerfile_dir=Path(),
        filename=filename,
        remote_context=remote,
        local_dockerfile=request.dockerfile_text is not None,
    )
    return build.frontend_attrs()


__all__ = ["dockerfile_build", "frontend_attrs", "local_name", "named_sources"]
