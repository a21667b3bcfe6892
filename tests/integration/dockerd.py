"""A private Docker Engine for tests: Debian's `dockerd` (docker.io, installed by scripts/setup)
with its own data root, exec root, pidfile and unix socket under the test's tmp.

It changes no network of this machine (`--bridge=none --iptables=false --ip6tables=false`)
and runs in a mount namespace of its own (`unshare --mount`) where /run is a fresh tmpfs and
/etc/docker a private directory, so the files dockerd 20.10 writes there (its trust key, the
containerd shim sockets, /run/docker) and the mounts it makes go away with it. The daemon
needs root; a test using it must be marked `root` and `integration`.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.buildkit.conftest import unmount_under
from tests.conftest import require, require_root, require_tool

START_TIMEOUT = 60.0
# In its namespace: /run private, /etc/docker private, then dockerd itself (exec: the
# process the test holds is dockerd, and SIGTERM reaches it).
_NAMESPACE_SCRIPT = (
    'mount -t tmpfs -o mode=0755 tmpfs /run && mount --bind "$1" /etc/docker && shift && exec "$@"'
)


@dataclass
class DockerEngine:
    """One running dockerd: `host` is its DOCKER_HOST (unix:///...)."""

    host: str
    state: Path
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """What a client needs to use this engine and no other."""
        return {"DOCKER_HOST": self.host, "DOCKER_CONFIG": str(self.state / "client")}

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 30 s), then unmount whatever it left under its state."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        unmount_under(self.state)


def _accepts(path: Path) -> bool:
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
            status = sock.recv(64).split(b"\r\n", 1)[0]
        except OSError:
            return False
    return status.split(b" ")[1:2] == [b"200"]


def start_dockerd(state: Path) -> DockerEngine:
    """Start a private dockerd under `state`; fails the test (with its log) when it cannot."""
    require_root()
    dockerd = shutil.which("dockerd")
    require(
        dockerd is not None,
        "dockerd is not installed: scripts/setup installs Debian's docker.io for this test",
    )
    require_tool("unshare")
    require(Path("/etc/docker").is_dir(), "/etc/docker is missing (docker.io installs it)")
    assert dockerd is not None
    state.mkdir(parents=True)
    (state / "etc").mkdir()
    (state / "client").mkdir()
    config = state / "daemon.json"
    config.write_text("{}\n")  # this machine's /etc/docker/daemon.json is not read
    sock = state / "docker.sock"
    log = state / "dockerd.log"
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        _NAMESPACE_SCRIPT,
        "sh",
        str(state / "etc"),
        dockerd,
        "--config-file",
        str(config),
        "--data-root",
        str(state / "root"),
        "--exec-root",
        str(state / "exec"),
        "--pidfile",
        str(state / "docker.pid"),
        "-H",
        f"unix://{sock}",
        "--bridge=none",
        "--iptables=false",
        "--ip6tables=false",
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    engine = DockerEngine(f"unix://{sock}", state, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while not _accepts(sock):
        if process.poll() is not None:
            pytest.fail(
                f"dockerd exited with {process.returncode} at start:\n{engine.log_tail()}",
                pytrace=False,
            )
        if time.monotonic() > deadline:
            engine.stop()
            pytest.fail(
                f"dockerd did not answer on {sock} within {START_TIMEOUT:g} s:\n"
                f"{engine.log_tail()}",
                pytrace=False,
            )
        time.sleep(0.2)
    return engine
