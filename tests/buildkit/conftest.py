"""A real BuildKit daemon for tests: `buildkitd_factory` starts one (private root under the
test's tmp, runc, overlayfs, a unix socket) and stops it at the end of the session.

`buildkitd` (v0.32.2) comes from $POLYBUILD_TEST_BUILDKITD or ../shared/tools/buildkit; the
daemon needs root. A test using these fixtures must be marked `root` and `integration`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from polybuild.syscalls import MNT_DETACH, umount
from tests.conftest import SHARED, require, require_root, require_tool

RUNC = Path("/usr/sbin/runc")
START_TIMEOUT = 30.0


def buildkitd_binary() -> Path:
    """The buildkitd to test against; fails the test, naming what is missing, without one."""
    configured = os.environ.get("POLYBUILD_TEST_BUILDKITD")
    path = Path(configured) if configured else SHARED / "tools" / "buildkit" / "buildkitd"
    require(
        path.is_file() and os.access(path, os.X_OK),
        f"buildkitd is not at {path} (set POLYBUILD_TEST_BUILDKITD to a buildkitd v0.32.2)",
    )
    return path


@dataclass
class BuildkitDaemon:
    """One running buildkitd: `address` is what BuildkitClient takes (unix:///...)."""

    address: str
    state: Path
    process: subprocess.Popen[bytes]
    log: Path
    tcp: str | None = None  # tcp://127.0.0.1:PORT when started with `tls`

    def log_tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 20 s), then unmount whatever it left under its state."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        unmount_under(self.state)


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root`, deepest first (mountinfo's octal escapes decoded)."""
    prefix = str(root.resolve())
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split(" ")[4]
        point = point.encode().decode("unicode_escape") if "\\" in point else point
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    return sorted(found, key=len, reverse=True)


def unmount_under(root: Path) -> None:
    for point in mounts_under(root):
        umount(point, MNT_DETACH)


@dataclass
class BuildkitDaemons:
    """Starts daemons, each in its own state directory, and stops them all at the end."""

    base: Path
    binary: Path
    started: list[BuildkitDaemon] = field(default_factory=list)

    def start(self, extra_config: str = "", *, tls: DaemonTLS | None = None) -> BuildkitDaemon:
        """A daemon with the README's worker set-up plus `extra_config` (TOML tables:
        registries, ...), ready when its unix socket accepts connections. With `tls` it also
        listens on a free loopback port with those files (the unix socket stays plain)."""
        state = self.base / f"buildkitd-{len(self.started)}"
        state.mkdir(parents=True)
        sock = state / "buildkitd.sock"
        config = state / "buildkitd.toml"
        addresses = [f"unix://{sock}"]
        tcp = None
        grpc_tls = ""
        if tls is not None:
            tcp = f"tcp://127.0.0.1:{_free_port()}"
            addresses.append(tcp)
            grpc_tls = (
                f'[grpc.tls]\n  cert = "{tls.cert}"\n  key = "{tls.key}"\n  ca = "{tls.ca}"\n'
            )
        config.write_text(
            f'root = "{state / "root"}"\n'
            "[grpc]\n"
            f"  address = {json.dumps(addresses)}\n" + grpc_tls + "[worker.oci]\n"
            "  enabled = true\n"
            f'  binary = "{RUNC}"\n'
            '  snapshotter = "overlayfs"\n'
            "[worker.containerd]\n"
            "  enabled = false\n" + extra_config
        )
        log = state / "buildkitd.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(self.binary), "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        daemon = BuildkitDaemon(f"unix://{sock}", state, process, log, tcp)
        self.started.append(daemon)
        deadline = time.monotonic() + START_TIMEOUT
        while not _accepts(sock):
            if process.poll() is not None:
                pytest.fail(
                    f"buildkitd exited with {process.returncode} at start:\n{daemon.log_tail()}",
                    pytrace=False,
                )
            if time.monotonic() > deadline:
                daemon.stop()
                pytest.fail(
                    f"buildkitd did not listen on {sock} within {START_TIMEOUT:g} s:\n"
                    f"{daemon.log_tail()}",
                    pytrace=False,
                )
            time.sleep(0.1)
        return daemon

    def stop_all(self) -> None:
        for daemon in reversed(self.started):
            daemon.stop()


@dataclass(frozen=True)
class DaemonTLS:
    """The daemon's certificate and key, and the CA its clients' certificates must chain to."""

    cert: Path
    key: Path
    ca: Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _accepts(sock: Path) -> bool:
    if not sock.exists():
        return False
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(sock))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class BuildkitCertificates:
    """A CA, a daemon certificate from it (for 127.0.0.1 and buildkitd.test), a client
    certificate from it, and another CA that signed neither."""

    daemon: DaemonTLS
    ca: Path
    client_cert: Path
    client_key: Path
    other_ca: Path


def make_certificates(directory: Path) -> BuildkitCertificates:
    """Fresh P-256 keys and certificates, valid for a day, made with the openssl CLI."""
    openssl = require_tool("openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], cwd=directory, check=True, capture_output=True)

    def new_key(name: str) -> list[str]:
        return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", f"{name}.key"]  # fmt: skip

    for ca in ("ca", "other-ca"):
        run("req", "-x509", *new_key(ca), "-out", f"{ca}.pem", "-days", "1", "-subj", f"/CN={ca}")
    (directory / "daemon.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:buildkitd.test\n")
    for name, ext in (("daemon", ["-extfile", "daemon.ext"]), ("client", [])):
        run("req", *new_key(name), "-out", f"{name}.csr", "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "1", *ext)  # fmt: skip
    return BuildkitCertificates(
        daemon=DaemonTLS(directory / "daemon.pem", directory / "daemon.key", directory / "ca.pem"),
        ca=directory / "ca.pem",
        client_cert=directory / "client.pem",
        client_key=directory / "client.key",
        other_ca=directory / "other-ca.pem",
    )


@pytest.fixture(scope="session")
def buildkit_certificates(tmp_path_factory: pytest.TempPathFactory) -> BuildkitCertificates:
    return make_certificates(tmp_path_factory.mktemp("buildkit-certs"))


@pytest.fixture(scope="session")
def buildkitd_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., BuildkitDaemon]]:
    """`start(extra_config="") -> BuildkitDaemon`; every daemon is stopped after the session."""
    require_root()
    binary = buildkitd_binary()
    require(RUNC.is_file(), f"runc is not at {RUNC} (Debian's runc package)")
    daemons = BuildkitDaemons(tmp_path_factory.mktemp("buildkit"), binary)
    try:
        yield daemons.start
    finally:
        daemons.stop_all()


@pytest.fixture(scope="session")
def buildkitd(buildkitd_factory: Callable[..., BuildkitDaemon]) -> str:
    """The address (unix:///...) of one daemon shared by the session's tests."""
    return buildkitd_factory("").address
