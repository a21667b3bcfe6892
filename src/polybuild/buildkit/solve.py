"""A Dockerfile build on a BuildKit daemon: one Solve with its own `dockerfile.v0` frontend,
the context and the Dockerfile's directory served over the build's session, the result
sent back by the `oci` exporter as one OCI layout tarball, and the daemon's Status stream
handed to the caller as it comes.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from polybuild.buildkit._proto import control_pb2 as pb
from polybuild.buildkit.attachables import (
    Lookup,
    auth_service,
    filesend_service,
    filesync_service,
    secrets_service,
)
from polybuild.buildkit.client import BuildkitClient
from polybuild.buildkit.session import Session

FRONTEND = "dockerfile.v0"
CONTEXT = "context"  # the local directory names the dockerfile frontend asks for
DOCKERFILE = "dockerfile"


@dataclass(frozen=True, slots=True)
class DockerfileBuild:
    """What the dockerfile frontend is asked to build (its attributes are BuildKit's)."""

    context: Path
    dockerfile_dir: Path
    filename: str
    platforms: tuple[str, ...]
    build_args: Mapping[str, str] = field(default_factory=dict)
    target: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    no_cache: bool = False
    no_cache_filter: tuple[str, ...] = ()
    pull: bool = False
    network: str = "default"
    entitlements: tuple[str, ...] = ()
    secrets: Mapping[str, bytes] = field(default_factory=dict)
    shared_key: str = ""  # the same for the same client context: incremental transfers
    source_date_epoch: int | None = None  # also clamps the layers' file times, as ours

    def exporter_attrs(self) -> dict[str, str]:
        """The oci exporter's: with SOURCE_DATE_EPOCH, file times in the layers are clamped
        to it (BuildKit keeps them otherwise; polybuild always clamps)."""
        return {"rewrite-timestamp": "true"} if self.source_date_epoch is not None else {}

    def frontend_attrs(self) -> dict[str, str]:
        attrs = {"filename": self.filename, "platform": ",".join(self.platforms)}
        if self.target:
            attrs["target"] = self.target
        for name, value in self.build_args.items():
            attrs[f"build-arg:{name}"] = value
        for name, value in self.labels.items():
            attrs[f"label:{name}"] = value
        if self.no_cache:
            attrs["no-cache"] = ""
        elif self.no_cache_filter:
            attrs["no-cache"] = ",".join(self.no_cache_filter)
        if self.pull:
            attrs["image-resolve-mode"] = "pull"
        if self.network != "default":
            attrs["force-network-mode"] = self.network
        return attrs


async def solve_to_oci(
    client: BuildkitClient,
    build: DockerfileBuild,
    out: Path,
    on_status: Callable[[pb.StatusResponse], None],
    credentials: Lookup | None = None,
) -> dict[str, str]:
    """Build on the daemon and write the result to `out` (an OCI layout tarball, created
    new); returns the exporter's response (its digests). Cancelling this cancels the solve
    on the daemon. Failures are the client's mapped errors (RemoteError with BuildKit's
    text for a failed build). `credentials` answers the daemon's registry logins."""
    services = [
        filesync_service({CONTEXT: build.context, DOCKERFILE: build.dockerfile_dir}),
        filesend_service({"0": out}),
        secrets_service(dict(build.secrets)),
    ]
    if credentials is not None:
        services.append(auth_service(credentials))
    ref = secrets.token_hex(16)
    async with Session(client, services, shared_key=build.shared_key) as session:
        request = pb.SolveRequest(
            Ref=ref,
            Session=session.id,
            Frontend=FRONTEND,
            FrontendAttrs=build.frontend_attrs(),
            Exporters=[pb.Exporter(Type="oci", Attrs=build.exporter_attrs())],
            Entitlements=list(build.entitlements),
        )
        status = asyncio.create_task(_follow(client, ref, on_status))
        try:
            response = await client.call("Solve", client.calls.solve(request))
        finally:
            # The status stream ends with the solve; give it a moment for its last events.
            try:
                await asyncio.wait_for(asyncio.shield(status), 5)
            except (TimeoutError, Exception):
                status.cancel()
                await asyncio.gather(status, return_exceptions=True)
    return dict(response.ExporterResponse)


async def _follow(
    client: BuildkitClient, ref: str, on_status: Callable[[pb.StatusResponse], None]
) -> None:
    stream = client.calls.status(pb.StatusRequest(Ref=ref))
    async for update in stream:
        on_status(update)


__all__ = ["CONTEXT", "DOCKERFILE", "FRONTEND", "DockerfileBuild", "solve_to_oci"]
