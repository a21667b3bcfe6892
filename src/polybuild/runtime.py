"""Running containers from stored images: layers unpacked once, a snapshot per container, runc.

`Runtime` ties the image store to the container machinery. `polybuild run` and the build's
RUN steps both go through it.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from polybuild.dataroot import data_root
from polybuild.errors import ImageError, InvalidReferenceError, PolybuildError
from polybuild.executor import ExitStatus, Process
from polybuild.image import Digest, ImageStore, reference
from polybuild.image.config import ImageConfig
from polybuild.image.manifest import Manifest, Stored
from polybuild.image.select import (
    NoMatchingPlatformError,
    Selected,
    find_child,
    load_selected,
    platform_manifests,
    select_manifest,
)
from polybuild.image.store import remove_dead_scratch
from polybuild.platforms import Platform, default_platform, format_platform
from polybuild.snapshot import LayerStore, Snapshot, Snapshotter
from polybuild.syscalls import pid_alive


@dataclass(frozen=True, slots=True)
class RunOptions:
    """`docker run`-style overrides of the image config."""

    command: tuple[str, ...] = ()
    entrypoint: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    network: str = "private"
    hostname: str | None = None


def process_for(config: ImageConfig, options: RunOptions) -> Process:
    """The process `docker run` would start for this image config and these options."""
    container = config.config
    if options.entrypoint is not None:
        # As docker run: --entrypoint replaces the image's entrypoint and drops its CMD.
        entrypoint: tuple[str, ...] = (options.entrypoint,) if options.entrypoint else ()
        cmd = options.command
    else:
        entrypoint = tuple(container.entrypoint or ())
        cmd = options.command or tuple(container.cmd or ())
    args = (*entrypoint, *cmd)
    if not args:
        raise ImageError(
            "no command specified: the image has no CMD or ENTRYPOINT",
            hint="give the command after the image name",
        )
    return Process(
        args=args,
        env=(*(container.env or ()), *options.env),
        cwd=options.workdir or container.working_dir or "/",
        user=options.user if options.user is not None else (container.user or ""),
        hostname=options.hostname or secrets.token_hex(6),
        network=options.network,
        platform=config.platform,
    )


if TYPE_CHECKING:
    from polybuild.executor.runc import RuncExecutor, Stream


class Runtime:
    """Layers, snapshots and the OCI runtime under one data root."""

    def __init__(self, root: Path | None = None, store: ImageStore | None = None) -> None:
        self.root = root or data_root()
        self.store = store or ImageStore(self.root)
        self.layers = LayerStore(self.root / "layers")
        self.snapshots = Snapshotter(self.root / "snapshots")

    @functools.cached_property
    def executor(self) -> RuncExecutor:
        """The OCI runtime, made (and runc's module loaded) when a container is to run."""
        from polybuild.executor.runc import RuncExecutor

        return RuncExecutor(self.root / "containers")

    def adopt(self, diff_id: Digest, upper: Path) -> None:
        """Keep a committed snapshot's upper directory as layer `diff_id` unpacked."""
        self.layers.adopt(str(diff_id), upper)

    @contextlib.contextmanager
    def in_use(self, *, exclusive: bool = False) -> Iterator[None]:
        """Held (shared) while a build or run uses layers and caches.

        `exclusive` is for prune: it fails at once, with PolybuildError, while anything else
        holds the lock, rather than deleting layers under a running build.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / "runtime.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
            except BlockingIOError:
                raise PolybuildError(
                    f"a build or run is using {self.root}; nothing was changed",
                    hint="try again when it has finished",
                ) from None
            yield
        finally:
            os.close(fd)

    def cleanup_stale(self) -> None:
        """Remove what killed polybuild processes left: containers, mounts, temp dirs."""
        bundles = self.root / "containers" / "bundles"  # RuncExecutor's: none, none to clean
        if bundles.is_dir() and any(bundles.iterdir()):
            self.executor.cleanup_stale()
        self.snapshots.cleanup_stale()
        self.layers.cleanup_stale()
        remove_dead_scratch(self.root / "tmp")
        for directory in ("inline", "cache-mounts"):
            _remove_dead_temp_dirs(self.root / directory)

    def lowers(self, manifest: Stored[Manifest], config: Stored[ImageConfig]) -> list[Path]:
        """The image's layers unpacked (once, shared), bottom first."""
        layers = manifest.value.layers
        diff_ids = config.value.diff_ids
        if len(layers) != len(diff_ids):
            raise ImageError(
                f"image {manifest.digest}: {len(layers)} layers but {len(diff_ids)} diff IDs"
            )
        return self.unpacked(
            [(layer.digest, diff_id) for layer, diff_id in zip(layers, diff_ids, strict=True)]
        )

    def unpacked(self, layers: Sequence[tuple[Digest, Digest]]) -> list[Path]:
        """Each (blob, diff-id) layer unpacked once into the layer store, bottom first."""
        return [self.layers.ensure(str(diff_id), self._opener(blob)) for blob, diff_id in layers]

    def _opener(self, digest: Digest) -> Callable[[], BinaryIO]:
        # BlobReader verifies the digest as it is read; it quacks like a binary file.
        return lambda: cast(BinaryIO, self.store.content.open(digest))

    @contextlib.contextmanager
    def snapshot(self, lowers: Sequence[Path]) -> Iterator[Snapshot]:
        """A writable root over `lowers`, removed when the block ends."""
        snap = self.snapshots.prepare(lowers)
        try:
            yield snap
        finally:
            self.snapshots.release(snap)

    def run(
        self,
        manifest: Stored[Manifest],
        config: Stored[ImageConfig],
        process: Process,
        *,
        stdin: Stream = None,
        stdout: Stream = None,
        stderr: Stream = None,
    ) -> ExitStatus:
        """Run `process` in a throw-away container of the image (docker run --rm)."""
        self.cleanup_stale()
        with self.in_use(), self.snapshot(self.lowers(manifest, config)) as snap:
            return self.executor.run(
                snap.rootfs, process, stdin=stdin, stdout=stdout, stderr=stderr
            )


_TEMP_DIR = re.compile(r"^.+\.tmp-(\d+)(?:-[0-9a-f]+)?$")


def _remove_dead_temp_dirs(directory: Path) -> None:
    """Remove `NAME.tmp-PID[-HEX]` directories (heredoc files, cache mounts being created)
    whose process is gone: a killed build left them for good."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        match = _TEMP_DIR.match(entry.name)
        if match is not None and not pid_alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def select_for_run(
    store: ImageStore,
    text: str,
    platform: Platform | None,
    *,
    all_platforms: bool = False,
    warn: Callable[[str], None] | None = None,
) -> list[Selected]:
    """The image variants `polybuild run` should start.

    `NAME@sha256:...` pins one variant: the digest may be the image's index (then the
    platform picks, as usual) or one of its manifests (then exactly that one runs,
    whatever its platform). `all_platforms` gives every variant of the image.
    """
    try:
        ref = reference.parse(text)
    except InvalidReferenceError:
        ref = None
    if ref is not None and ref.digest is not None:
        pinned = _pinned_child(store, ref)
        if pinned is not None:
            return [pinned]
    record = store.resolve(text)
    variants = platform_manifests(store.content, record.target)
    if all_platforms:
        return [
            load_selected(store.content, descriptor.with_platform(found), format_platform(found))
            for descriptor, found in variants
        ]
    try:
        return [select_manifest(store.content, record.target, platform)]
    except NoMatchingPlatformError:
        if platform is not None or len(variants) != 1:
            raise
    # As docker run: an image with a single variant runs even when it does not match.
    descriptor, found = variants[0]
    if warn is not None:
        warn(
            f"The requested image's platform ({format_platform(found)}) does not match the "
            f"detected host platform ({format_platform(default_platform())}) and no specific "
            "platform was requested"
        )
    return [load_selected(store.content, descriptor.with_platform(found))]


def _pinned_child(store: ImageStore, ref: reference.Reference) -> Selected | None:
    assert ref.digest is not None
    for record in store.records():
        if record.name is None or record.name.name != ref.name:
            continue
        if record.target.digest == ref.digest:
            return None  # the index itself: select by platform
        child = find_child(store.content, record.target, ref.digest)
        if child is not None:
            return load_selected(store.content, child)
    return None
