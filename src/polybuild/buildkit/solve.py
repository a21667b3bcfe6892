"""A Dockerfile build on a BuildKit daemon: one Solve with its own `dockerfile.v0` frontend,
the context and the Dockerfile's directory served over the build's session, the result
sent back by the `oci` exporter as one OCI layout tarball and/or pushed by the daemon by
digest (its `image` exporter), and the daemon's Status stream handed to the caller as it
comes.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from polybuild.buildkit._proto import control_pb2 as pb
from polybuild.buildkit.attachables import (
    Lookup,
    Sink,
    auth_service,
    filesend_service,
    filesync_service,
    secrets_service,
)
from polybuild.buildkit.client import BuildkitClient
from polybuild.buildkit.dockerfile_build import CONTEXT, DOCKERFILE, DockerfileBuild
from polybuild.buildkit.session import Session
from polybuild.buildkit.sshforward import ssh_service

FRONTEND = "dockerfile.v0"


def cache_options(build: DockerfileBuild) -> pb.CacheOptions:
    """`--cache-to` / `--cache-from` for the daemon's own cache exporters and importers."""
    return pb.CacheOptions(
        Exports=[pb.CacheOptionsEntry(Type=t, Attrs=dict(a)) for t, a in build.cache_to],
        Imports=[pb.CacheOptionsEntry(Type=t, Attrs=dict(a)) for t, a in build.cache_from],
    )


@dataclass(frozen=True, slots=True)
class Export:
    """One exporter of the daemon's as the user asked for it (`oci`, `docker`, `tar`,
    `image`), with BuildKit's attribute names; `sink` receives the file it sends back (a
    path created new, or an open stream such as stdout), None when the daemon keeps the
    result (a push)."""

    type: str
    attrs: Mapping[str, str]
    sink: Sink | None = None


@dataclass(frozen=True, slots=True)
class Outputs:
    """Where the daemon sends the result: an OCI layout tarball written here, and/or a push
    by digest (no tag) to each repository named, as buildx asks of each node of a
    multi-node build before it writes the index itself; and/or the user's own outputs
    exported by the daemon as they are (`direct`)."""

    oci_tar: Path | None = None
    push_by_digest: tuple[str, ...] = ()
    direct: tuple[Export, ...] = ()

    def exporters(self, attrs: Mapping[str, str]) -> tuple[list[pb.Exporter], dict[str, Sink]]:
        """The Solve's exporters and the FileSend sinks by exporter id (its index)."""
        exporters: list[pb.Exporter] = []
        sinks: dict[str, Sink] = {}
        if self.oci_tar is not None:
            sinks[str(len(exporters))] = self.oci_tar
            exporters.append(pb.Exporter(Type="oci", Attrs=dict(attrs)))
        if self.push_by_digest:
            pushed = {
                **attrs,
                "name": ",".join(self.push_by_digest),
                "push": "true",
                "push-by-digest": "true",
            }
            exporters.append(pb.Exporter(Type="image", Attrs=pushed))
        for export in self.direct:
            if export.sink is not None:
                sinks[str(len(exporters))] = export.sink
            exporters.append(pb.Exporter(Type=export.type, Attrs=dict(export.attrs)))
        return exporters, sinks


PUSHED_DESCRIPTOR = "containerimage.descriptor"  # base64 of the pushed top's JSON descriptor


async def solve_build(
    client: BuildkitClient,
    build: DockerfileBuild,
    outputs: Outputs,
    on_status: Callable[[pb.StatusResponse], None],
    credentials: Lookup | None = None,
) -> dict[str, str]:
    """Build on the daemon and export to `outputs` (the tarball is created new); returns
    the exporters' response (digests; PUSHED_DESCRIPTOR when pushed). Cancelling this
    cancels the solve on the daemon. Failures are the client's mapped errors (RemoteError
    with BuildKit's text for a failed build). `credentials` answers the daemon's registry
    logins (for pulls and its push)."""
    exporters, sinks = outputs.exporters(build.exporter_attrs())
    services = [
        filesync_service(
            {**build.named_directories, CONTEXT: build.context, DOCKERFILE: build.dockerfile_dir}
        ),
        filesend_service(sinks),
        secrets_service(dict(build.secrets)),
    ]
    if credentials is not None:
        services.append(auth_service(credentials))
    if build.ssh:
        services.append(ssh_service(build.ssh))
    ref = secrets.token_hex(16)
    async with Session(client, services, shared_key=build.shared_key) as session:
        request = pb.SolveRequest(
            Ref=ref,
            Session=session.id,
            Frontend=FRONTEND,
            FrontendAttrs=build.frontend_attrs(),
            Exporters=exporters,
            Cache=cache_options(build),
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


__all__ = [
    "CONTEXT",
    "DOCKERFILE",
    "FRONTEND",
    "PUSHED_DESCRIPTOR",
    "DockerfileBuild",
    "Export",
    "Outputs",
    "solve_build",
]
