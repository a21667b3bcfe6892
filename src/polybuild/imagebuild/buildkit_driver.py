"""`BuildKitDriver`: a builder node that is a BuildKit daemon (buildx's remote driver).

What it runs comes from the daemon's ListWorkers: BuildKit lists a worker's native platforms
first, then those its binfmt_misc emulators add, without marking which is which, so the
platforms of the first one's architecture count as native (amd64 and its v2..v4 levels on an
x86-64 host) and the others as emulated.

A build runs there with BuildKit's own `dockerfile.v0` frontend (buildkit/solve.py): the
context and the Dockerfile's directory go over the session, the result comes back as one OCI
layout tarball that is read into this machine's store (every blob verified), and each
platform's image is picked from it, so the exporters work on it as on a local image.
"""

from __future__ import annotations

import asyncio
import base64
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polybuild.builders import Detected, Node
from polybuild.builders.node_options import BuildKitOptions
from polybuild.buildkit.address import TLSConfig
from polybuild.buildkit.records import CacheRecord, DaemonInfo, WorkerInfo
from polybuild.cache.spec import CacheType
from polybuild.errors import (
    ImageError,
    NodeUnreachableError,
    RemoteError,
    StepFailedError,
    UsageError,
)
from polybuild.image.descriptor import Descriptor
from polybuild.image.platform_image import PlatformImage
from polybuild.image.reference import parse
from polybuild.image.select import select_manifest
from polybuild.imagebuild.buildkit_outputs import NodeOutputs, node_outputs
from polybuild.imagebuild.buildkit_progress import StatusEvents
from polybuild.imagebuild.context_url import UNFETCHED
from polybuild.imagebuild.dockerfile_file import read_dockerfile
from polybuild.imagebuild.driver import NodeBuild
from polybuild.imagebuild.frontend_request import dockerfile_build
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter
from polybuild.prune_policy import PrunePolicy

if TYPE_CHECKING:
    from polybuild.buildkit.client import BuildkitClient
    from polybuild.buildkit.solve import DockerfileBuild, Outputs
    from polybuild.image.store import ImageStore


def tls_config(options: BuildKitOptions) -> TLSConfig | None:
    """The node's TLS driver options as the client takes them (None: plain gRPC)."""
    if not options.tls:
        return None
    return TLSConfig(
        cacert=Path(options.cacert) if options.cacert else None,
        cert=Path(options.cert) if options.cert else None,
        key=Path(options.key) if options.key else None,
        server_name=options.servername or None,
    )


def split_platforms(workers: tuple[WorkerInfo, ...]) -> Detected:
    """Native (the first platform's architecture) and emulated platforms of the workers."""
    every: list[Platform] = []
    for worker in workers:
        every.extend(p for p in worker.platforms if p not in every)
    if not every:
        return Detected()
    arch = every[0].architecture
    return Detected(
        tuple(p for p in every if p.architecture == arch),
        tuple(p for p in every if p.architecture != arch),
    )


def _client(node: Node, timeout: float | None = None) -> BuildkitClient:
    """A client of the node's daemon with its TLS options (default timeout: the node's)."""
    from polybuild.buildkit.client import BuildkitClient  # grpc: only when a daemon is asked

    options = node.buildkit
    wait = options.connect_timeout if timeout is None else timeout
    return BuildkitClient(node.endpoint, tls=tls_config(options), timeout=wait)


async def daemon_status(node: Node, timeout: float) -> tuple[DaemonInfo, Detected]:
    """The daemon's version and platforms (Info and ListWorkers) within `timeout` seconds."""
    async with _client(node, timeout) as client:
        info = await client.info()
        workers = await client.list_workers()
    return info, split_platforms(workers)


async def daemon_disk_usage(node: Node, filters: tuple[str, ...] = ()) -> tuple[CacheRecord, ...]:
    """The daemon's build cache records (`polybuild du`, its --filter as BuildKit's filters)."""
    async with _client(node) as client:
        return await client.disk_usage(filters)


async def daemon_prune(
    node: Node, *, all_: bool, policy: PrunePolicy | None = None
) -> tuple[CacheRecord, ...]:
    """Remove the daemon's unused build cache (`polybuild prune --builder`), as `policy`
    (--filter until=, --reserved-space, --max-used-space, --min-free-space) says."""
    policy = policy or PrunePolicy()
    async with _client(node) as client:
        return await client.prune(
            all_=all_,
            keep_duration=policy.keep_duration,
            reserved_space=policy.reserved_space,
            max_used_space=policy.max_used_space,
            min_free_space=policy.min_free_space,
        )


class BuildKitDriver:
    """A BuildKit daemon node of a builder."""

    def __init__(self, node: Node, store: ImageStore | None = None) -> None:
        self.node = node
        self.store = store
        self._detected: Detected | None = None

    @property
    def label(self) -> str:
        return f"{self.node.name} ({self.node.endpoint})"

    @property
    def vertex_prefix(self) -> str:
        return f"{self.node.name}/"

    async def detect(self) -> Detected:
        if self._detected is None:
            try:
                _, self._detected = await daemon_status(
                    self.node, self.node.buildkit.connect_timeout
                )
            except NodeUnreachableError as exc:
                raise NodeUnreachableError(self.label, exc.reason, hint=exc.hint) from exc
        return self._detected

    cache_format = "buildkit"

    def check(self, request: BuildRequest) -> None:
        """The daemon runs registry, inline, gha, s3 and azblob caches itself; a local
        directory cache or an OCI layout context would need this machine's content store
        served over the session."""
        for named in request.build_contexts:
            if named.kind == "oci-layout":
                raise UsageError(
                    f"--build-context {named.name}={named.value}: an OCI layout context is not "
                    f"supported on BuildKit node {self.label} yet",
                    hint="push the image to a registry and use docker-image://REF",
                )
        for flag, specs in (("--cache-to", request.cache_to), ("--cache-from", request.cache_from)):
            for spec in specs:
                if spec.type is CacheType.LOCAL:
                    raise UsageError(
                        f"{flag} {spec}: a local cache directory is not supported on BuildKit "
                        f"node {self.label} yet",
                        hint="use type=registry,ref=REF (the daemon reads and writes it itself)",
                    )

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        from polybuild.buildkit.solve import Outputs

        if self.store is None:
            raise UsageError(f"node {self.label}: no image store to build into")
        wanted = node_outputs(request)
        with tempfile.TemporaryDirectory(prefix="polybuild-buildkit-") as scratch:
            out = Path(scratch) / "out.tar"
            outputs = Outputs(out if wanted.local_copy else None, wanted.push_by_digest)
            response = await self.solve(request, platforms, progress, outputs)
            if wanted.local_copy:
                images = await asyncio.to_thread(_read_images, self.store, out, platforms)
            else:
                images = await _fetch_pushed(self.store, wanted, response, platforms)
        return NodeBuild(images, (), ())

    async def solve(
        self,
        request: BuildRequest,
        platforms: tuple[Platform, ...],
        progress: ProgressWriter,
        outputs: Outputs,
    ) -> dict[str, str]:
        """Build `platforms` on the daemon and export to `outputs`; the exporters' response.
        The daemon's Status becomes `progress` events; a failed build is a StepFailedError
        (a SolveFailedError unless a RUN failed) with BuildKit's text and the Dockerfile
        lines it points at, naming this node in its hint."""
        from polybuild.buildkit.solve import solve_build

        events = StatusEvents(self.node.name)

        def show(update: Any) -> None:
            for event in events.events(update):
                progress.emit(event)

        with tempfile.TemporaryDirectory(prefix="polybuild-buildkit-") as scratch:
            build = await asyncio.to_thread(
                _dockerfile_build, request, platforms, Path(scratch) / "dockerfile"
            )
            try:
                async with _client(self.node) as client:
                    return await solve_build(client, build, outputs, show, _docker_credentials())
            except NodeUnreachableError as exc:
                _cancelled_instead()
                raise NodeUnreachableError(self.label, exc.reason, hint=exc.hint) from exc
            except RemoteError as exc:
                _cancelled_instead()  # Ctrl-C: the daemon's "context canceled" is ours
                raise self._solve_failed(exc, events) from exc

    def _solve_failed(self, exc: RemoteError, events: StatusEvents) -> StepFailedError:
        """A failed solve as buildx reports it (errdetails.BuildFailure.error), printed after
        the failed step's block that the daemon's progress gave; the hint names this node."""
        from polybuild.buildkit.errdetails import failure_of

        where = f"the build ran on BuildKit node {self.label}"
        failure = failure_of(exc.__cause__, exc.message)
        error = failure.error(f"{exc.hint}; {where}" if exc.hint else where)
        error.node = self.node.name
        error.step = events.name_of(failure.vertex) if failure.vertex else ""
        return error


def _cancelled_instead() -> None:
    """Raise CancelledError when this task is being cancelled (Ctrl-C, another node's
    failure): the daemon's answer to our cancel is then not the build's error, so the build
    ends as cancelled (exit 130, as buildx) whichever of the two arrives first."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def _docker_credentials() -> Callable[[str], Awaitable[tuple[str, str] | None]]:
    """The user's registry credentials (Docker's config.json and its helpers) by host, as
    the daemon asks for them; an identity token goes as the secret with no user, as buildx
    sends it. The registry package (half a second of imports) loads only when asked."""
    stores: list[Any] = []

    def get(host: str) -> Any:
        if not stores:
            from polybuild.registry.credentials import DockerCredentials

            stores.append(DockerCredentials())
        return stores[0].get(host)

    async def lookup(host: str) -> tuple[str, str] | None:
        found = await asyncio.to_thread(get, host)
        if found is None:
            return None
        if found.identity_token:
            return "", str(found.identity_token)
        return str(found.username), str(found.password)

    return lookup


def stage_dockerfile(request: BuildRequest, directory: Path) -> str:
    """The Dockerfile (and its own `NAME.dockerignore`, if any) copied into `directory`, a
    new private one: the daemon's FileSync of the `dockerfile` local can read only these,
    never the rest of the directory the Dockerfile sits in (`-f /etc/x/Dockerfile`).
    Returns the file name to give the frontend."""
    data, name, path = read_dockerfile(request)
    directory.mkdir(mode=0o700)
    (directory / name).write_bytes(data)
    ignore = path.with_name(name + ".dockerignore")
    if request.dockerfile_text is None and ignore.is_file():
        (directory / ignore.name).write_bytes(ignore.read_bytes())
    return name


def stage_remote_dockerfile(request: BuildRequest, directory: Path) -> tuple[str, bool]:
    """For a URL context, as buildx: `-f -` or an absolute -f is staged in `directory` and
    sent (True); else -f (default Dockerfile) names a file in the fetched context (False)."""
    directory.mkdir(mode=0o700)
    data = request.dockerfile_text
    if data is None and request.dockerfile is not None and request.dockerfile.is_absolute():
        try:
            data = request.dockerfile.read_bytes()
        except OSError as exc:
            raise UsageError(
                f"failed to read dockerfile: open {request.dockerfile}: {exc.strerror}"
            ) from exc
    if data is None:
        return str(request.dockerfile or "Dockerfile"), False
    (directory / "Dockerfile").write_bytes(data)
    return "Dockerfile", True


def _dockerfile_build(
    request: BuildRequest, platforms: tuple[Platform, ...], dockerfile_dir: Path
) -> DockerfileBuild:
    """What the daemon builds; the Dockerfile staged in `dockerfile_dir` (stage_dockerfile)."""
    if request.context == UNFETCHED:  # a git or HTTP(S) context: the daemon fetches it
        filename, local_dockerfile = stage_remote_dockerfile(request, dockerfile_dir)
        context = dockerfile_dir
    else:
        filename, local_dockerfile = stage_dockerfile(request, dockerfile_dir), True
        context = request.context.resolve()
    return dockerfile_build(
        request,
        platforms,
        context=context,
        dockerfile_dir=dockerfile_dir,
        filename=filename,
        remote_context=request.context_source if request.context == UNFETCHED else "",
        local_dockerfile=local_dockerfile,
    )


async def _fetch_pushed(
    store: ImageStore,
    wanted: NodeOutputs,
    response: Mapping[str, str],
    platforms: tuple[Platform, ...],
) -> tuple[PlatformImage, ...]:
    """Each platform's image from what the daemon pushed by digest: its manifests and
    configs fetched into `store`, its layers left in the registry."""
    from polybuild.buildkit.solve import PUSHED_DESCRIPTOR
    from polybuild.registry.pushed import fetch_pushed

    encoded = response.get(PUSHED_DESCRIPTOR, "")
    try:
        if len(encoded) > 16 << 10:
            raise ValueError("too long")
        top = Descriptor.from_json(base64.b64decode(encoded, validate=True))
    except (ValueError, ImageError) as exc:
        raise RemoteError(f"the BuildKit daemon did not say what it pushed ({exc})") from None
    await fetch_pushed(store, parse(wanted.push_by_digest[0]), top)
    return tuple(
        PlatformImage(platform, selected.manifest, selected.config)
        for platform in platforms
        for selected in [select_manifest(store.content, top, platform)]
    )


def _read_images(
    store: ImageStore, tarball: Path, platforms: tuple[Platform, ...]
) -> tuple[PlatformImage, ...]:
    """Each platform's image from the daemon's OCI tarball (read into `store`, verified)."""
    # The layout reader (tar streams, decompressors) loads only when the result comes back
    # here: a build whose outputs the daemon writes never needs it.
    from polybuild.image.layout_tar import read_tar

    if not tarball.is_file():
        raise RemoteError("the BuildKit daemon sent no result")
    with tarball.open("rb") as f:
        top = read_tar(f, store.content)
    if len(top.value.manifests) != 1:
        raise RemoteError("the BuildKit daemon's result is not one image")
    images = []
    for platform in platforms:
        selected = select_manifest(store.content, top.value.manifests[0], platform)
        images.append(PlatformImage(platform, selected.manifest, selected.config))
    return tuple(images)


__all__ = [
    "BuildKitDriver",
    "daemon_disk_usage",
    "daemon_prune",
    "daemon_status",
    "split_platforms",
    "tls_config",
]
