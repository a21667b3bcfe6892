"""What a remote node needs to build a request, as values: the Solve message (Dockerfile
bytes, options, the .dockerignore-filtered context as a manifest of paths, modes, sizes and
sha256 digests) and where each context file's bytes are on this machine.

Named directories (`--build-context NAME=DIR`, and git and HTTP(S) sources fetched here)
travel in the same manifest, each under `NAMED_DIR/<index>/` (filtered by its own
.dockerignore first), which the build context's patterns then exclude; `Solve.named_dirs`
says which name each index is. The node checks each is a real directory of its copy."""

from __future__ import annotations

import hashlib
import os
import socket
import stat
from pathlib import Path

import msgspec

from polybuild.dockerfile.ignore import load_patterns
from polybuild.errors import UsageError
from polybuild.fileops.context import list_context_files
from polybuild.imagebuild.build_contexts import NamedContext, parse_build_contexts
from polybuild.imagebuild.context_hashes import ContextHashes
from polybuild.imagebuild.dockerfile_file import read_dockerfile
from polybuild.imagebuild.named_contexts import exclude_patterns, frontend_images
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform, format_platform
from polybuild.remote.messages import ContextEntry, Solve


def context_manifest(
    context: Path, patterns: tuple[str, ...], data_root: Path | None = None
) -> tuple[tuple[ContextEntry, ...], dict[str, Path]]:
    """The context's entries after .dockerignore, and each file digest's path here (files
    unchanged since the last build under `data_root` are not read again)."""
    hashes = ContextHashes(data_root, context)
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
            digest = hashes.digest(path, rel, st)
            files.setdefault(digest, path)
            entries.append(ContextEntry(rel, st.st_mode, st.st_size, digest, "", st.st_mtime_ns))
        else:
            raise UsageError(
                f"the build context has {rel}, which is neither a file, a directory nor a "
                "symlink: a remote node cannot recreate it",
                hint="exclude it in .dockerignore",
            )
    hashes.save()
    return tuple(entries), files


NAMED_DIR = ".polybuild-named-contexts"  # where named directories travel in the context
_DIR_MODE = stat.S_IFDIR | 0o755


def named_manifest(
    request: BuildRequest, taken: tuple[ContextEntry, ...], data_root: Path | None
) -> tuple[tuple[ContextEntry, ...], dict[str, Path], dict[str, str]]:
    """Each named directory's entries under NAMED_DIR/<index>/, its files by digest, and
    NAME -> index; UsageError when the build context has a NAMED_DIR of its own."""
    named = [n for n in request.build_contexts if n.directory is not None]
    if not named:
        return (), {}, {}
    if any(e.path == NAMED_DIR or e.path.startswith(NAMED_DIR + "/") for e in taken):
        raise UsageError(
            f"the build context has {NAMED_DIR}, where a remote node receives this build's "
            "--build-context directories",
            hint=f"exclude {NAMED_DIR} in .dockerignore, or rename it",
        )
    entries = [ContextEntry(NAMED_DIR, _DIR_MODE)]
    files: dict[str, Path] = {}
    indexes: dict[str, str] = {}
    for index, context in enumerate(named):
        assert context.directory is not None
        top = f"{NAMED_DIR}/{index}"
        found, found_files = context_manifest(
            context.directory, exclude_patterns(context), data_root
        )
        entries.append(ContextEntry(top, _DIR_MODE))
        entries.extend(msgspec.structs.replace(e, path=f"{top}/{e.path}") for e in found)
        for digest, path in found_files.items():
            files.setdefault(digest, path)
        indexes[context.name] = str(index)
    return tuple(entries), files, indexes


def received_contexts(solve: Solve, context_dir: Path) -> tuple[NamedContext, ...]:
    """The node's side: a Solve's named images and directories (each checked to be a real
    directory of the received context, never a link out of it) as the request's."""
    images = parse_build_contexts(
        f"{n}=docker-image://{ref}" for n, ref in solve.named_images.items()
    )
    dirs: list[NamedContext] = []
    for name, index in solve.named_dirs.items():
        if not index.isdigit() or name in {n.name for n in images}:
            raise UsageError(f"--build-context {name}: the client sent a bad named directory")
        directory = context_dir / NAMED_DIR / index
        for path in (directory.parent, directory):
            st = os.lstat(path) if os.path.lexists(path) else None
            if st is None or not stat.S_ISDIR(st.st_mode):
                raise UsageError(f"--build-context {name}: the client sent no directory for it")
        dirs.append(NamedContext(name, f"{NAMED_DIR}/{index}", directory, exclude=()))
    return (*images, *dirs)


def context_key(context: Path, data_root: Path | None) -> str:
    """Which context of which client this is, for the node to keep its copy of it between
    builds: a hash (no path of the client's leaves it)."""
    who = f"{socket.gethostname()}\0{data_root or ''}\0{context.resolve()}"
    return hashlib.sha256(who.encode("utf-8", "surrogateescape")).hexdigest()


def make_solve(
    request: BuildRequest,
    platforms: tuple[Platform, ...],
    solve_id: int,
    data_root: Path | None = None,
) -> tuple[Solve, dict[str, Path]]:
    """The Solve for `platforms` of `request`, and the context files by digest (reads and
    hashes the context: call it in a thread; `data_root` keeps the digests for the next
    build). `--ssh` agents cannot be forwarded to a node (yet): a UsageError naming the
    flag."""
    if request.secrets.ssh:
        raise UsageError(
            "--ssh: forwarding an SSH agent to a remote node is not supported yet",
            hint="build the platforms that need it on a builder of this machine",
        )
    data, name, path = read_dockerfile(request)
    patterns = load_patterns(request.context, path)
    entries, files = context_manifest(request.context, patterns, data_root)
    named_entries, named_files, named_dirs = named_manifest(request, entries, data_root)
    for digest, path in named_files.items():
        files.setdefault(digest, path)
    solve = Solve(
        id=solve_id,
        dockerfile=data,
        dockerfile_name=name,
        platforms=tuple(format_platform(p) for p in platforms),
        context=entries + named_entries,
        # the named directories are no part of the build context (their pattern comes last,
        # so no `!` exception of the context's own can bring them back)
        ignore_patterns=(*patterns, NAMED_DIR) if named_dirs else patterns,
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
        context_key=context_key(request.context, data_root),
        cache_from=tuple(str(spec) for spec in request.cache_from),
        cache_records=cache_mode(request),
        add_hosts=request.add_hosts,
        ulimits=request.ulimits,
        shm_size=request.shm_size or 0,
        named_images=frontend_images(request),
        named_dirs=named_dirs,
    )
    return solve, files


def cache_mode(request: BuildRequest) -> str:
    """What a node is asked to send back of its build cache: "max", "min" or nothing."""
    if not request.cache_to:
        return ""
    return "max" if any(spec.get("mode") == "max" for spec in request.cache_to) else "min"
