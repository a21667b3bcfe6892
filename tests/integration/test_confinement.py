"""Attacks from a RUN step or `polybuild run` on the host, each tried through the CLI.

Every test here reproduces an escape that worked before the container was confined as
Docker confines it (fresh read-only sysfs and cgroups, a private network namespace, mount
stubs removed without following the step's symlinks).
"""

from __future__ import annotations

import http.server
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_platforms, require_root, require_tool
from tests.conftest import run_cli as polybuild

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

SECRET = "host-loopback-only-secret"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_root()
    require_tool("runc")
    require_tool("slirp4netns")
    require_platforms("linux/amd64", "linux/arm64")
    data = tmp_path_factory.mktemp("confinement") / "root"
    import_busybox(data, ("amd64", "arm64"))
    yield data


def build_local(root: Path, tmp_path: Path, dockerfile: str, *flags: str) -> tuple[int, str, Path]:
    ctx = tmp_path / "ctx"
    ctx.mkdir(exist_ok=True)
    (ctx / "Dockerfile").write_text(dockerfile)
    out = tmp_path / "out"
    proc = polybuild(root, "build", *flags, "-o", f"type=local,dest={out}", str(ctx))
    return proc.returncode, proc.stderr, out


# -- /sys and cgroups ---------------------------------------------------------------------

ESCAPE = r"""
FROM busybox
RUN (echo $$ > /sys/fs/cgroup/devices/cgroup.procs && echo MOVED || echo STAYED) > /r; \
    (echo a > /sys/fs/cgroup/devices/devices.allow && echo ALLOWED || echo REFUSED) >> /r; \
    mknod /k c 1 11; (head -c 1 /k > /dev/null && echo OPENED || echo BLOCKED) >> /r; rm -f /k; \
    (touch /sys/kernel/pb-x && echo SYSRW || echo SYSRO) >> /r; \
    (echo 1 > /sys/fs/cgroup/pids/cgroup.procs && echo PIDSRW || echo PIDSRO) >> /r
"""


def test_cgroups_and_sysfs_are_read_only_natively_and_emulated(root: Path, tmp_path: Path) -> None:
    """The escape: join the host's root devices cgroup, then mknod + open a host device."""
    code, err, out = build_local(root, tmp_path, ESCAPE, "--platform", "linux/amd64,linux/arm64")
    assert code == 0, err
    for platform in ("linux_amd64", "linux_arm64"):
        lines = (out / platform / "r").read_text().split()
        assert lines == ["STAYED", "REFUSED", "BLOCKED", "SYSRO", "PIDSRO"], (platform, lines)


def test_polybuild_run_sees_the_same_read_only_sys(root: Path) -> None:
    script = (
        "echo $$ > /sys/fs/cgroup/devices/cgroup.procs && echo MOVED; "
        "grep -E ' /sys(/fs/cgroup/devices)? ' /proc/mounts"
    )
    for platform in ("linux/amd64", "linux/arm64"):
        proc = polybuild(root, "run", "--platform", platform, "busybox", "sh", "-c", script)
        assert "MOVED" not in proc.stdout
        mounts = proc.stdout.splitlines()
        assert len(mounts) == 2, proc.stdout + proc.stderr
        for line in mounts:
            assert line.split()[3].split(",")[0] == "ro", line


# -- the network --------------------------------------------------------------------------


class _Secret(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = SECRET.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture(scope="module")
def loopback_service() -> Iterator[int]:
    """An HTTP service bound only to the host's 127.0.0.1."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Secret)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def outside_host() -> Iterator[str]:
    """A test host: a network namespace behind a veth pair, serving HTTP on its address.

    Traffic from a container to it crosses the container's NAT and the host's routing, as
    traffic to a package mirror would.
    """
    require_root()
    require_tool("ip")
    name = f"pbconf{os.getpid()}"
    host_if, ns_if = f"pbh{os.getpid() % 100000}", f"pbn{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    server: subprocess.Popen[bytes] | None = None
    try:
        for cmd in (
            ["ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if],
            ["ip", "link", "set", ns_if, "netns", name],
            ["ip", "addr", "add", "10.213.77.1/30", "dev", host_if],
            ["ip", "link", "set", host_if, "up"],
            ["ip", "-n", name, "addr", "add", "10.213.77.2/30", "dev", ns_if],
            ["ip", "-n", name, "link", "set", ns_if, "up"],
            ["ip", "-n", name, "link", "set", "lo", "up"],
        ):
            subprocess.run(cmd, check=True)
        docroot = Path(f"/tmp/{name}-www")
        docroot.mkdir(exist_ok=True)
        (docroot / "hello").write_text("hello from outside\n")
        server = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                name,
                "python3",
                "-m",
                "http.server",
                "--bind",
                "10.213.77.2",
                "--directory",
                str(docroot),
                "8080",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            time.sleep(0.05)
            probe = subprocess.run(
                [
                    "ip",
                    "netns",
                    "exec",
                    name,
                    "python3",
                    "-c",
                    "import socket; socket.create_connection(('10.213.77.2', 8080), 1)",
                ],
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
        yield "10.213.77.2:8080"
    finally:
        if server is not None:
            server.kill()
            server.wait()
        subprocess.run(["ip", "link", "del", host_if], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", name], check=False)
        shutil.rmtree(f"/tmp/{name}-www", ignore_errors=True)


PROBE = """
FROM busybox
ARG PORT TARGET
RUN --network={mode} (timeout 5 wget -q -O - http://127.0.0.1:$PORT/ || echo no-loopback) > /lo; \
    (timeout 5 wget -q -O - http://10.0.2.2:$PORT/ || echo no-gateway) > /gw; \
    (timeout 5 wget -q -O - http://$TARGET/hello || echo no-outside) > /out; \
    ip -o link | wc -l > /links
"""


def probe_args(port: int, target: str) -> tuple[str, ...]:
    return ("--build-arg", f"PORT={port}", "--build-arg", f"TARGET={target}", "--no-cache")


def test_default_network_is_private_with_outbound_access(
    root: Path, tmp_path: Path, loopback_service: int, outside_host: str
) -> None:
    code, err, out = build_local(
        root,
        tmp_path,
        PROBE.format(mode="default"),
        "--platform",
        "linux/amd64,linux/arm64",
        *probe_args(loopback_service, outside_host),
    )
    assert code == 0, err
    for platform in ("linux_amd64", "linux_arm64"):
        files = out / platform
        assert SECRET not in (files / "lo").read_text(), "reached the host's 127.0.0.1"
        assert SECRET not in (files / "gw").read_text(), "reached the host's 127.0.0.1 via NAT"
        assert (files / "out").read_text() == "hello from outside\n", platform


def test_network_none_has_only_loopback(
    root: Path, tmp_path: Path, loopback_service: int, outside_host: str
) -> None:
    code, err, out = build_local(
        root,
        tmp_path,
        PROBE.format(mode="default"),
        "--network",
        "none",
        *probe_args(loopback_service, outside_host),
    )
    assert code == 0, err
    assert (out / "out").read_text() == "no-outside\n"
    assert (out / "lo").read_text() == "no-loopback\n"
    assert (out / "links").read_text().strip() == "1"


@pytest.mark.parametrize("where", ["flag", "instruction"])
def test_host_network_needs_the_entitlement(
    root: Path, tmp_path: Path, loopback_service: int, outside_host: str, where: str
) -> None:
    mode = "host" if where == "instruction" else "default"
    flags = ("--network", "host") if where == "flag" else ()
    args = (*flags, *probe_args(loopback_service, outside_host))
    code, err, out = build_local(root, tmp_path, PROBE.format(mode=mode), *args)
    assert code != 0
    assert "--network=host is not allowed" in err and "--allow network.host" in err, err
    assert not out.exists()
    code, err, out = build_local(
        root, tmp_path, PROBE.format(mode=mode), *args, "--allow", "network.host"
    )
    assert code == 0, err
    assert (out / "lo").read_text() == SECRET


def test_polybuild_run_network_is_private(
    root: Path, loopback_service: int, outside_host: str
) -> None:
    script = f"timeout 5 wget -q -O - http://127.0.0.1:{loopback_service}/; timeout 5 wget -q -O - http://{outside_host}/hello"
    proc = polybuild(root, "run", "busybox", "sh", "-c", script)
    assert SECRET not in proc.stdout
    assert "hello from outside" in proc.stdout, proc.stderr
    proc = polybuild(root, "run", "--network", "host", "busybox", "sh", "-c", script)
    assert SECRET in proc.stdout  # docker run --network host, as asked


def test_no_namespace_or_slirp_is_left(root: Path) -> None:
    proc = polybuild(root, "run", "busybox", "true")
    assert proc.returncode == 0, proc.stderr
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(root) not in mounts
    bundles = root / "containers" / "bundles"
    assert not bundles.exists() or not any(bundles.iterdir())


# -- mount stubs --------------------------------------------------------------------------


def test_mount_stub_cleanup_never_follows_the_steps_symlinks(root: Path, tmp_path: Path) -> None:
    """The step moves the stub's parent away and leaves a symlink to a host directory in its
    place; cleaning up the stub must not remove the host's empty directory of that name."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "empty-file").touch()
    dockerfile = f"""
FROM busybox
RUN --mount=type=tmpfs,target=/stubdir/sub \
    --mount=type=bind,source=Dockerfile,target=/stubdir/empty-file \
    mv /stubdir /moved && ln -s {victim} /stubdir
"""
    code, err, out = build_local(root, tmp_path, dockerfile)
    assert code == 0, err
    assert (victim / "sub").is_dir(), "a host directory was removed by the stub cleanup"
    assert (victim / "empty-file").is_file(), "a host file was removed by the stub cleanup"
    assert os.readlink(out / "stubdir") == str(victim)


# -- devices ------------------------------------------------------------------------------


@pytest.fixture
def host_block_device(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A loop device holding SECRET: a stand-in for the host's disk."""
    losetup = require_tool("losetup")
    backing = tmp_path / "disk.img"
    backing.write_bytes(SECRET.encode() + bytes(65536 - len(SECRET)))
    device = subprocess.run(
        [losetup, "-f", "--show", str(backing)], capture_output=True, text=True, check=True
    ).stdout.strip()
    try:
        rdev = os.stat(device).st_rdev
        yield os.major(rdev), os.minor(rdev)
    finally:
        subprocess.run([losetup, "-d", device], check=False)


def test_a_cache_mount_seeded_from_a_stage_never_reads_its_device_nodes(
    root: Path, tmp_path: Path, host_block_device: tuple[int, int]
) -> None:
    """A device node made by a step must stay a node when a cache mount is seeded from it:
    copying it would read the host's disk into the cache (and so into the step)."""
    major, minor = host_block_device
    dockerfile = f"""
FROM busybox AS seed
RUN mkdir /s && mknod /s/disk b {major} {minor}
FROM busybox
RUN --mount=type=cache,id=devleak-{os.getpid()},target=/c,from=seed,source=/s \
    (head -c 64 /c/disk || echo refused) > /read; ls -l /c/disk > /listing
"""
    code, err, out = build_local(root, tmp_path, dockerfile, "--no-cache")
    assert code == 0, err
    assert SECRET not in (out / "read").read_text()
    assert (out / "listing").read_text().startswith("b"), (out / "listing").read_text()
    for path in (root / "cache-mounts").rglob("disk"):
        assert stat.S_ISBLK(os.lstat(path).st_mode), path


CAP_NET_RAW = 13


def effective_caps(root: Path, *flags: str) -> int:
    proc = polybuild(root, "run", *flags, "busybox", "grep", "CapEff", "/proc/self/status")
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[1], 16)


def test_no_raw_packets_on_the_private_network(root: Path) -> None:
    """slirp4netns forwards raw frames sent to 127.0.0.1 to the host's loopback, so a step on
    the private network gets no CAP_NET_RAW (ICMP datagram sockets still allow ping)."""
    assert not effective_caps(root) >> CAP_NET_RAW & 1
    assert effective_caps(root, "--network", "none") >> CAP_NET_RAW & 1  # Docker's default
    proc = polybuild(root, "run", "busybox", "cat", "/proc/sys/net/ipv4/ping_group_range")
    assert proc.stdout.split() == ["0", "2147483647"]


# -- a polybuild that dies --------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_the_container_dies_with_polybuild(root: Path, sig: signal.Signals) -> None:
    """runc dies with us; the container's processes must too, or a cancelled CI job leaves
    its RUN step running for good."""
    marker = f"{7000 + sig}.{os.getpid()}"
    env = {**os.environ, "POLYBUILD_ROOT": str(root)}
    child = subprocess.Popen(
        [sys.executable, "-m", "polybuild", "run", "busybox", "sleep", marker],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def sleeping() -> bool:
        ps = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True, check=False)
        return any(line == f"sleep {marker}" for line in ps.stdout.splitlines())

    deadline = time.monotonic() + 30
    while not sleeping() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sleeping(), "the container never started"
    child.send_signal(sig)
    child.wait(30)
    deadline = time.monotonic() + 10
    while sleeping() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not sleeping(), f"the container outlived polybuild killed by {sig.name}"
    assert polybuild(root, "run", "busybox", "true").returncode == 0  # cleans what is left
    assert str(root) not in Path("/proc/self/mountinfo").read_text()


# -- mounts over runc's own set-up ------------------------------------------------------------


@pytest.mark.parametrize(
    ("dockerfile", "expected"),
    [
        (
            "FROM busybox\nRUN --mount=type=tmpfs,target=/mnt/../dev true\n",
            "Dockerfile:2: --mount target=/mnt/../dev: mounts on /, /dev, /proc or /sys",
        ),
        (
            "FROM busybox\nWORKDIR /proc\nRUN --mount=type=bind,target=sys true\n",
            "Dockerfile:3: --mount target=sys: mounts on /, /dev, /proc or /sys",
        ),
        (
            "FROM busybox AS a\nRUN ln -s /proc /m\n"
            "FROM a\nRUN --mount=type=tmpfs,target=/m/x true\n",
            "mount target /m/x resolves to /proc/x in the root filesystem",
        ),
    ],
)
def test_step_mounts_never_land_on_dev_proc_or_sys(
    root: Path, tmp_path: Path, dockerfile: str, expected: str
) -> None:
    """runc before 1.2.8 (Debian 12 has 1.1.5) can be made to mask or write host paths
    through mounts over its own /dev, /proc and /sys set-up (CVE-2025-31133, -52565)."""
    code, err, _ = build_local(root, tmp_path, dockerfile)
    assert code != 0
    assert expected in err, err


def test_heredoc_scripts_still_run_from_dev_pipes(root: Path, tmp_path: Path) -> None:
    code, err, out = build_local(
        root, tmp_path, "FROM busybox\nRUN <<EOF\n#!/bin/sh\necho ran > /ran\nEOF\n"
    )
    assert code == 0, err
    assert (out / "ran").read_text() == "ran\n"
