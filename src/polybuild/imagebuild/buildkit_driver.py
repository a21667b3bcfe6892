"""`BuildKitDriver`: a builder node that is a BuildKit daemon (buildx's remote driver).

What it runs comes from the daemon's ListWorkers: BuildKit lists a worker's native platforms
first, then those its binfmt_misc emulators add, without marking which is which, so the
platforms of the first one's architecture count as native (amd64 and its v2..v4 levels on an
x86-64 host) and the others as emulated. Building on it (Solve with the dockerfile.v0
frontend over a session) is the next step of this driver; until then a platform planned onto
a BuildKit node fails the build with a message that says so.
"""

from __future__ import annotations

from pathlib import Path

from polybuild.builders import Detected, Node
from polybuild.builders.node_options import BuildKitOptions
from polybuild.buildkit.address import TLSConfig
from polybuild.buildkit.records import DaemonInfo, WorkerInfo
from polybuild.errors import NodeUnreachableError, UsageError
from polybuild.imagebuild.driver import NodeBuild
from polybuild.imagebuild.request import BuildRequest
from polybuild.platforms import Platform
from polybuild.progress.writer import ProgressWriter


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


async def daemon_status(node: Node, timeout: float) -> tuple[DaemonInfo, Detected]:
    """The daemon's version and platforms (Info and ListWorkers) within `timeout` seconds."""
    from polybuild.buildkit.client import BuildkitClient  # grpc: only when a daemon is asked

    options = node.buildkit
    client = BuildkitClient(node.endpoint, tls=tls_config(options), timeout=timeout)
    async with client:
        info = await client.info()
        workers = await client.list_workers()
    return info, split_platforms(workers)


class BuildKitDriver:
    """A BuildKit daemon node of a builder."""

    def __init__(self, node: Node) -> None:
        self.node = node
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

    async def build(
        self, request: BuildRequest, platforms: tuple[Platform, ...], progress: ProgressWriter
    ) -> NodeBuild:
        shown = ", ".join(str(p) for p in platforms)
        raise UsageError(
            f"node {self.label}: building on a BuildKit daemon is not supported yet "
            f"(asked for {shown}); polybuild can list its status (inspect --bootstrap)",
            hint="pin these platforms to another node of the builder with --platform",
        )


__all__ = ["BuildKitDriver", "daemon_status", "split_platforms", "tls_config"]
