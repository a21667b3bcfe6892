"""What a remote node needs to build a request, as values: the Solve message (Dockerfile
bytes, options, the .dockerignore-filtered context as a manifest of paths, modes, sizes and
sha256 digests) and where each context file's bytes are on this machine."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from polybuild.dockerfile.ignore import load_patterns
from polybuild.errors import UsageError
from polybuild.fileops.context import list_context_files
from polybuild.imagebuild.pipeline import read_dockerfile
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, format_platform
from polybuild.remote.messages import ContextEntry, Solve

_CHUNK = 1 << 20


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        while chunk := os.read(fd, _CHUNK):
            digest.update(chunk)
    finally:
        os.close(fd)
    return "sha256:" + digest.hexdigest()


def context_manifest(
    context: Path, patterns: tuple[str, ...]
) -> tuple[tuple[ContextEntry, ...], dict[str, Path]]:
    """The context's entries after .dockerignore, and each file digest's path here."""
    entries: list[ContextEntry] = []
    files: dict[str, Path] = {}
    for rel in list_context_files(context, patterns):
        path = context / rel
        st = os.lstat(path)
        if stat.S_ISDIR(st.st_mode):
            entries.append(ContextEntry(rel, st.st_mode, mtime_ns=st.st_mtime_ns))
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            entries.append(ContextEntry(rel, st.st_mode, target=target, mtime_ns=st.st_mtime_ns))
        elif stat.S_ISREG(st.st_mode):
            digest = _sha256(path)
            files.setdefault(digest, path)
            entries.append(ContextEntry(rel, st.st_mode, st.st_size, digest, "", st.st_mtime_ns))
        else:
            raise UsageError(
                f"the build context has {rel}, which is neither a file, a directory nor a "
                "symlink: a remote node cannot recreate it",
                hint="exclude it in .dockerignore",
            )
    return tuple(entries), files


def make_solve(
    request: BuildRequest, platforms: tuple[Platform, ...], solve_id: int
) -> tuple[Solve, dict[str, Path]]:
    """The Solve for `platforms` of `request`, and the context files by digest (reads and
    hashes the context: call it in a thread). `--ssh` agents cannot be forwarded to a node
    (yet): a UsageError naming the flag."""
    if request.secrets.ssh:
        raise UsageError(
            "--ssh: forwarding an SSH agent to a remote node is not supported yet",
            hint="build the platforms that need it on a builder of this machine",
        )
    data, name, path = read_dockerfile(request)
    patterns = load_patterns(request.context, path)
    entries, files = context_manifest(request.context, patterns)
    solve = Solve(
        id=solve_id,
        dockerfile=data,
        dockerfile_name=name,
        platforms=tuple(format_platform(p) for p in platforms),
        context=entries,
        ignore_patterns=patterns,
        build_args=dict(request.build_args),
        target=request.target,
        labels=dict(request.labels),
        no_cache=request.no_cache,
        no_cache_filter=request.no_cache_filter,
        pull=request.pull,
        network=request.network,
        entitlements=tuple(sorted(request.entitlements)),
        source_date_epoch=request.source_date_epoch,
        secrets=dict(request.secrets.secrets),
    )
    return solve, files
