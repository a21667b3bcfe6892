"""`--ssh` on a BuildKit node: the session's SSH service (buildkit/sshforward.py) against a
real ssh-agent, then through a real buildkitd: `ssh-add -l` in a RUN step lists the key of
the agent on this machine, a key cannot be removed from the build, an id the build did not
offer fails it with BuildKit's words, and the agent's socket path never reaches the daemon.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from polybuild.buildkit._grpc import grpc
from polybuild.buildkit._proto import ssh_pb2
from polybuild.buildkit.sshforward import CHECK_AGENT, FORWARD_AGENT, SSH_ID, ssh_service
from tests.buildkit.conftest import BuildkitDaemon
from tests.conftest import require_root, require_tool, run_cli

REQUEST_IDENTITIES = bytes([0, 0, 0, 1, 11])
REMOVE_ALL_IDENTITIES = bytes([0, 0, 0, 1, 19])
IDENTITIES_ANSWER = 12
FAILURE = 5


@dataclass(frozen=True)
class Agent:
    """A running ssh-agent holding one fresh ed25519 key."""

    socket: Path
    fingerprint: str  # SHA256:...
    public_blob: bytes  # the key as the agent protocol names it

    def listed(self) -> str:
        env = {**os.environ, "SSH_AUTH_SOCK": str(self.socket)}
        done = subprocess.run(
            ["ssh-add", "-l"], env=env, capture_output=True, text=True, check=False
        )
        return done.stdout  # empty, exit 1: no keys


@pytest.fixture
def agent() -> Iterator[Agent]:
    """ssh-agent in the foreground on a socket of its own (short path: sun_path is 108
    bytes), with a key made for this test."""
    for tool in ("ssh-agent", "ssh-add", "ssh-keygen"):
        require_tool(tool)
    directory = Path(tempfile.mkdtemp(prefix="pbt-agent-"))
    key = directory / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "pbt-ssh-forward",
                    "-f", str(key)], check=True)  # fmt: skip
    agent_socket = directory / "agent.sock"
    process = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(agent_socket)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while not agent_socket.exists():
            assert process.poll() is None, "ssh-agent exited at start"
            assert time.monotonic() < deadline, "ssh-agent did not listen within 10 s"
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(agent_socket)}
        subprocess.run(["ssh-add", "-q", str(key)], env=env, check=True)
        listing = subprocess.run(["ssh-keygen", "-lf", f"{key}.pub"], capture_output=True,
                                 text=True, check=True)  # fmt: skip
        fingerprint = listing.stdout.split()[1]
        blob = base64.b64decode(Path(f"{key}.pub").read_text().split()[1])
        yield Agent(agent_socket, fingerprint, blob)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def agent_message(kind: int, payload: bytes = b"") -> bytes:
    return (len(payload) + 1).to_bytes(4, "big") + bytes([kind]) + payload


async def with_service(agents: dict[str, Path], use: Callable[[grpc.aio.Channel], Any]) -> Any:
    """Runs `ssh_service(agents)` on a private grpc server and `use(channel)` against it."""
    directory = Path(tempfile.mkdtemp(prefix="pbt-sshsvc-"))
    server = grpc.aio.server()
    server.add_generic_rpc_handlers([ssh_service(agents).handler])
    server.add_insecure_port(f"unix:{directory / 's.sock'}")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"unix:{directory / 's.sock'}") as channel:
            return await use(channel)
    finally:
        await server.stop(grace=None)
        shutil.rmtree(directory, ignore_errors=True)


def forward(
    agents: dict[str, Path], chunks: list[bytes], ident: str | None = "default"
) -> tuple[bytes, grpc.StatusCode, str]:
    """One ForwardAgent call sending `chunks`: what came back, its status code and text."""

    async def use(channel: grpc.aio.Channel) -> tuple[bytes, grpc.StatusCode, str]:
        call = channel.stream_stream(
            FORWARD_AGENT,
            request_serializer=ssh_pb2.BytesMessage.SerializeToString,
            response_deserializer=ssh_pb2.BytesMessage.FromString,
        )(
            iter(ssh_pb2.BytesMessage(data=chunk) for chunk in chunks),
            metadata=() if ident is None else ((SSH_ID, ident),),
        )
        received = b""
        try:
            async for message in call:
                received += message.data
        except grpc.aio.AioRpcError:
            pass
        return received, await call.code(), await call.details() or ""

    result: tuple[bytes, grpc.StatusCode, str] = asyncio.run(with_service(agents, use))
    return result


def check(agents: dict[str, Path], ident: str) -> grpc.StatusCode:
    async def use(channel: grpc.aio.Channel) -> grpc.StatusCode:
        call = channel.unary_unary(
            CHECK_AGENT,
            request_serializer=ssh_pb2.CheckAgentRequest.SerializeToString,
            response_deserializer=ssh_pb2.CheckAgentResponse.FromString,
        )
        try:
            await call(ssh_pb2.CheckAgentRequest(ID=ident))
        except grpc.aio.AioRpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    result: grpc.StatusCode = asyncio.run(with_service(agents, use))
    return result


def test_check_agent_knows_only_the_offered_ids(tmp_path: Path) -> None:
    agents = {"default": tmp_path / "a.sock", "deploy": tmp_path / "b.sock"}
    assert check(agents, "deploy") == grpc.StatusCode.OK
    assert check(agents, "") == grpc.StatusCode.OK  # BuildKit's empty id is "default"
    assert check(agents, "other") == grpc.StatusCode.NOT_FOUND
    assert check({"deploy": tmp_path / "b.sock"}, "") == grpc.StatusCode.NOT_FOUND


def test_the_agent_answers_across_the_call_in_any_chunking(agent: Agent) -> None:
    request = REQUEST_IDENTITIES * 2  # two requests, split mid-message across messages
    received, code, _ = forward({"deploy": agent.socket}, [request[:3], request[3:7], request[7:]],
                                ident="deploy")  # fmt: skip
    assert code == grpc.StatusCode.OK
    answers = []
    while received:
        length = int.from_bytes(received[:4], "big")
        answers.append(received[4 : 4 + length])
        received = received[4 + length :]
    assert len(answers) == 2 and answers[0] == answers[1]
    assert answers[0][0] == IDENTITIES_ANSWER
    assert int.from_bytes(answers[0][1:5], "big") == 1  # one key
    assert agent.public_blob in answers[0]


def test_no_id_in_the_metadata_is_the_default_agent(agent: Agent) -> None:
    received, code, _ = forward({"default": agent.socket}, [REQUEST_IDENTITIES], ident=None)
    assert code == grpc.StatusCode.OK
    assert received[4] == IDENTITIES_ANSWER and agent.public_blob in received


def test_the_build_cannot_remove_keys_from_the_agent(agent: Agent) -> None:
    received, code, _ = forward({"default": agent.socket}, [REMOVE_ALL_IDENTITIES])
    assert (received, code) == (agent_message(FAILURE), grpc.StatusCode.OK)
    assert agent.fingerprint in agent.listed()  # the agent never saw the request


def test_a_sign_request_reaches_the_agent_and_its_signature_comes_back(agent: Agent) -> None:
    def string(value: bytes) -> bytes:
        return len(value).to_bytes(4, "big") + value

    sign = agent_message(13, string(agent.public_blob) + string(b"data to sign") + bytes(4))
    received, code, _ = forward({"default": agent.socket}, [sign])
    assert code == grpc.StatusCode.OK
    assert received[4] == 14  # SSH2_AGENT_SIGN_RESPONSE
    assert b"ssh-ed25519" in received  # the signature's format, then its 64 bytes


def test_an_agent_closing_mid_request_ends_the_call(tmp_path: Path) -> None:
    path = tmp_path / "closing.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(1)

    def serve_once() -> None:
        connection, _ = listener.accept()
        connection.recv(64)
        connection.close()

    server = threading.Thread(target=serve_once)
    server.start()
    try:
        received, code, details = forward({"default": path}, [REQUEST_IDENTITIES])
    finally:
        server.join(timeout=10)
        listener.close()
    assert (received, code) == (b"", grpc.StatusCode.UNAVAILABLE)
    assert details == "SSH agent default closed the connection"


def test_an_id_not_offered_is_not_found_and_no_agent_is_dialled(agent: Agent) -> None:
    received, code, details = forward({"default": agent.socket}, [REQUEST_IDENTITIES], "deploy")
    assert (received, code) == (b"", grpc.StatusCode.NOT_FOUND)
    assert "deploy" in details and str(agent.socket) not in details


def test_an_oversized_message_ends_the_call(agent: Agent) -> None:
    huge = (1 << 20).to_bytes(4, "big") + b"\x0b"
    received, code, details = forward({"default": agent.socket}, [huge])
    assert (received, code) == (b"", grpc.StatusCode.INVALID_ARGUMENT)
    assert "1048576 bytes" in details


def test_an_agent_that_is_gone_ends_the_call(tmp_path: Path) -> None:
    received, code, details = forward({"default": tmp_path / "none.sock"}, [REQUEST_IDENTITIES])
    assert (received, code) == (b"", grpc.StatusCode.UNAVAILABLE)
    assert "cannot connect" in details


# Through a real daemon. busybox has no ssh-add: the build's root file system is this
# machine's ssh-add and /bin/sh with the libraries ldd lists (the daemon runs amd64, as here).

DOCKERFILE = """FROM scratch
COPY rootfs/ /
RUN --mount=type=ssh ssh-add -l > /out && (ssh-add -D 2>/removed || echo refused >>/removed)
"""


def host_rootfs(into: Path) -> None:
    """ssh-add, sh, their libraries and loader at their own paths, and a passwd for root."""
    programs = [Path("/usr/bin/ssh-add"), Path("/bin/sh")]
    files = {str(p): p.resolve() for p in programs}
    for program in programs:
        listing = subprocess.run(["ldd", str(program)], capture_output=True, text=True,
                                 check=True)  # fmt: skip
        for path in re.findall(r"(/\S+) \(0x", listing.stdout):
            files[path] = Path(path).resolve()
    for path, real in files.items():
        target = into / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(real, target)
    (into / "etc").mkdir(exist_ok=True)
    (into / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")


@pytest.fixture(scope="module")
def ssh_daemon(buildkitd_factory: Callable[..., BuildkitDaemon]) -> BuildkitDaemon:
    require_root()
    return buildkitd_factory("")


def ssh_context(directory: Path, dockerfile: str) -> Path:
    ctx = directory / "ctx"
    host_rootfs(ctx / "rootfs")
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def files_mentioning(root: Path, needle: bytes) -> list[Path]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and needle in path.read_bytes():
            found.append(path)
    return found


@pytest.mark.root
@pytest.mark.integration
def test_ssh_add_on_the_daemon_lists_the_key_of_this_machines_agent(
    ssh_daemon: BuildkitDaemon, agent: Agent, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    created = run_cli(root, "create", "--name", "bkssh", "--driver", "remote", ssh_daemon.address)
    assert created.returncode == 0, created.stderr
    ctx = ssh_context(tmp_path, DOCKERFILE)
    dest = tmp_path / "fs"
    done = run_cli(root, "build", "--builder", "bkssh", "--platform", "linux/amd64",
                   "--ssh", f"default={agent.socket}", "-o", f"type=local,dest={dest}",
                   str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert agent.fingerprint in (dest / "out").read_text()
    assert "pbt-ssh-forward (ED25519)" in (dest / "out").read_text()
    # The key stays: the build's agent is read-only, as buildx's.
    assert "refused" in (dest / "removed").read_text()
    assert agent.fingerprint in agent.listed()
    # Only the id crossed the session: nothing the daemon keeps or logs names the socket.
    assert files_mentioning(ssh_daemon.state, str(agent.socket).encode()) == []


@pytest.mark.root
@pytest.mark.integration
@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ((), 'no SSH key "deploy" forwarded from the client'),
        (("--ssh", "default={socket}"), "unset ssh forward key deploy"),
    ],
    ids=["no --ssh", "another id"],
)
def test_a_required_id_not_given_fails_the_build_with_buildkits_words(
    ssh_daemon: BuildkitDaemon,
    agent: Agent,
    tmp_path: Path,
    flags: tuple[str, ...],
    words: str,
) -> None:
    root = tmp_path / "root"
    created = run_cli(root, "create", "--name", "bkssh", "--driver", "remote", ssh_daemon.address)
    assert created.returncode == 0, created.stderr
    dockerfile = (
        "FROM scratch\nCOPY rootfs/ /\nRUN --mount=type=ssh,id=deploy,required=true ssh-add -l\n"
    )
    ctx = ssh_context(tmp_path, dockerfile)
    done = run_cli(root, "build", "--builder", "bkssh", "--platform", "linux/amd64",
                   *(f.format(socket=agent.socket) for f in flags),
                   "-o", f"type=local,dest={tmp_path / 'fs'}", str(ctx))  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert words in done.stderr, done.stderr
    assert not (tmp_path / "fs").exists()
