"""BuildKit's control API on the wire: our protos and client against a real buildkitd v0.32.2
(Info, ListWorkers), an unreachable daemon, and the method paths and field numbers that
must be BuildKit's."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from polybuild.buildkit import DaemonInfo, TLSConfig, WorkerInfo, grpc_target
from polybuild.buildkit.client import BuildkitClient
from polybuild.errors import NodeUnreachableError, UsageError
from polybuild.platforms import Platform
from tests.buildkit.conftest import BuildkitCertificates, BuildkitDaemon

EXPECTED_VERSION = "v0.32.2"
EXPECTED_REVISION = "991535e0973488b6a429096d21fa13f81f2d89d8"


async def _info_and_workers(address: str) -> tuple[DaemonInfo, tuple[WorkerInfo, ...]]:
    async with BuildkitClient(address) as client:
        return await client.info(), await client.list_workers()


@pytest.mark.root
@pytest.mark.integration
def test_info_and_workers_of_a_real_daemon(buildkitd: str) -> None:
    info, workers = asyncio.run(_info_and_workers(buildkitd))

    assert info == DaemonInfo("github.com/moby/buildkit", EXPECTED_VERSION, EXPECTED_REVISION)
    assert len(workers) == 1
    (worker,) = workers
    assert worker.id
    assert Platform("linux", "amd64") in worker.platforms
    assert worker.label("org.mobyproject.buildkit.worker.executor") == "oci"
    assert worker.label("org.mobyproject.buildkit.worker.snapshotter") == "overlayfs"
    assert list(worker.labels) == sorted(worker.labels)


@pytest.mark.root
@pytest.mark.integration
def test_a_stopped_daemon_is_unreachable_quickly(buildkitd_factory: object, tmp_path: Path) -> None:
    assert callable(buildkitd_factory)
    daemon: BuildkitDaemon = buildkitd_factory()
    assert asyncio.run(_info_and_workers(daemon.address))[0].version == EXPECTED_VERSION
    daemon.stop()

    started = time.monotonic()
    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(_info_and_workers(daemon.address))
    assert time.monotonic() - started < 5
    assert caught.value.endpoint == daemon.address
    assert "the BuildKit daemon is unreachable" in str(caught.value)
    assert daemon.address in str(caught.value)


def test_a_socket_nobody_listens_on_is_unreachable_quickly(tmp_path: Path) -> None:
    address = f"unix://{tmp_path / 'none.sock'}"
    started = time.monotonic()
    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(_info_and_workers(address))
    assert time.monotonic() - started < 5
    assert str(caught.value).startswith(f"node {address}: the BuildKit daemon is unreachable")


def test_a_closed_tcp_port_is_unreachable_not_a_tls_refusal(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_bytes(b"")
    # Port 1 on loopback: nothing listens there.
    for tls in (None, TLSConfig(cacert=ca)):
        with pytest.raises(NodeUnreachableError) as caught:
            asyncio.run(_info_and_workers_tls("tcp://127.0.0.1:1", tls))
        assert "the BuildKit daemon is unreachable" in str(caught.value)


async def _info_and_workers_tls(address: str, tls: TLSConfig | None) -> DaemonInfo:
    async with BuildkitClient(address, tls=tls, timeout=5) as client:
        return await client.info()


def test_addresses_become_grpc_targets() -> None:
    assert grpc_target("unix:///run/buildkit/buildkitd.sock") == (
        "unix:///run/buildkit/buildkitd.sock"
    )
    assert grpc_target("tcp://buildkit-arm64:1234") == "buildkit-arm64:1234"
    for bad in ("buildkit:1234", "ssh://host", "unix://relative.sock", "tcp://"):
        with pytest.raises(UsageError):
            grpc_target(bad)


def test_tls_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cert and key go together"):
        TLSConfig(cert=tmp_path / "cert.pem")
    missing = TLSConfig(cacert=tmp_path / "missing.pem")
    with pytest.raises(UsageError, match="TLS cacert .*missing.pem.* cannot be read"):
        asyncio.run(_info_and_workers_tls("tcp://127.0.0.1:1", missing))


def test_method_paths_are_buildkits() -> None:
    from polybuild.buildkit._proto import (
        auth_pb2,
        filesync_pb2,
        health_pb2,
        secrets_pb2,
        ssh_pb2,
        upload_pb2,
    )
    from polybuild.buildkit.control import CONTROL, method_path

    paths = {
        method_path(service, name)
        for module in (auth_pb2, filesync_pb2, health_pb2, secrets_pb2, ssh_pb2, upload_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for name in service.methods_by_name
    } | {method_path(CONTROL, name) for name in CONTROL.methods_by_name}
    assert paths == {
        "/moby.buildkit.v1.Control/DiskUsage",
        "/moby.buildkit.v1.Control/Prune",
        "/moby.buildkit.v1.Control/Solve",
        "/moby.buildkit.v1.Control/Status",
        "/moby.buildkit.v1.Control/Session",
        "/moby.buildkit.v1.Control/ListWorkers",
        "/moby.buildkit.v1.Control/Info",
        "/moby.filesync.v1.FileSync/DiffCopy",
        "/moby.filesync.v1.FileSync/TarStream",
        "/moby.filesync.v1.FileSend/DiffCopy",
        "/moby.filesync.v1.Auth/Credentials",
        "/moby.filesync.v1.Auth/FetchToken",
        "/moby.filesync.v1.Auth/GetTokenAuthority",
        "/moby.filesync.v1.Auth/VerifyTokenAuthority",
        "/moby.buildkit.secrets.v1.Secrets/GetSecret",
        "/moby.sshforward.v1.SSH/CheckAgent",
        "/moby.sshforward.v1.SSH/ForwardAgent",
        "/moby.upload.v1.Upload/Pull",
        "/grpc.health.v1.Health/Check",
    }


def test_bytes_fields_stand_for_buildkits_messages_on_the_wire() -> None:
    """A Definition declared as bytes encodes as BuildKit's message field would: tag 2,
    length-delimited (wire type 2), the message's own bytes inside."""
    from polybuild.buildkit._proto import control_pb2, fsutil_wire_pb2

    definition = b"\x0a\x03abc"  # a pb.Definition with def = ["abc"]
    request = control_pb2.SolveRequest(Definition=definition, Frontend="dockerfile.v0")
    encoded = request.SerializeToString()
    assert encoded.startswith(bytes([2 << 3 | 2, len(definition)]) + definition)
    packet = fsutil_wire_pb2.Packet(
        type=fsutil_wire_pb2.Packet.PACKET_DATA, ID=7, data=b"xy"
    ).SerializeToString()
    assert packet == bytes([1 << 3, 2, 3 << 3, 7, 4 << 3 | 2, 2]) + b"xy"


def test_importing_the_package_does_not_import_grpc() -> None:
    code = (
        "import sys, polybuild.buildkit, polybuild.buildkit.address;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"


@pytest.mark.root
@pytest.mark.integration
def test_tls_accepted_and_refused_as_the_daemon_and_the_client_see_it(
    buildkitd_factory: Callable[..., BuildkitDaemon],
    buildkit_certificates: BuildkitCertificates,
    capfd: pytest.CaptureFixture[str],
) -> None:
    certs = buildkit_certificates
    daemon = buildkitd_factory(tls=certs.daemon)
    assert daemon.tcp is not None
    mutual = TLSConfig(cacert=certs.ca, cert=certs.client_cert, key=certs.client_key)

    assert asyncio.run(_info_and_workers_tls(daemon.tcp, mutual)).version == EXPECTED_VERSION
    by_name = TLSConfig(
        cacert=certs.ca, cert=certs.client_cert, key=certs.client_key, server_name="buildkitd.test"
    )
    assert asyncio.run(_info_and_workers_tls(daemon.tcp, by_name)).version == EXPECTED_VERSION

    refused = {
        "wrong CA": TLSConfig(cacert=certs.other_ca, cert=certs.client_cert, key=certs.client_key),
        "no client certificate": TLSConfig(cacert=certs.ca),
        "wrong server name": TLSConfig(
            cacert=certs.ca, cert=certs.client_cert, key=certs.client_key, server_name="other.test"
        ),
    }
    for case, tls in refused.items():
        with pytest.raises(NodeUnreachableError) as caught:
            asyncio.run(_info_and_workers_tls(daemon.tcp, tls))
        assert str(caught.value).startswith(f"node {daemon.tcp}: TLS refused"), case

    with pytest.raises(NodeUnreachableError) as caught:
        asyncio.run(_info_and_workers_tls(daemon.tcp, None))
    assert "the BuildKit daemon is unreachable" in str(caught.value)
    assert caught.value.hint is not None
    assert "does it want TLS" in caught.value.hint
    # gRPC's core says nothing on stderr by itself: the errors above are the whole story.
    assert capfd.readouterr().err == ""
