"""Test hosts for remote nodes: a network namespace per host, reached from this machine over a
veth pair, with Debian's sshd running inside it in its own mount and PID namespaces.

Each host gets a private /30 out of 10.213.0.0/16: the client side of the veth is
10.213.N.1, the node 10.213.N.2, where sshd listens on port 22 (and nowhere else). In the
node's mount namespace /var/lib/polybuild (the data root of root) and /tmp are directories of
the test's own, and /run is a fresh tmpfs, so the node's store, scratch files and runc state
are not the client's; the node runs the same polybuild, on its PATH through sshd's SetEnv.
The client reaches it with the user's OpenSSH client and a config file of our own: the
host's real public key in a known_hosts file, StrictHostKeyChecking yes.

The node's processes live in new network, mount and PID namespaces made by `unshare`; the
veth pair and the leftovers of killed runs are tests/nodes/netns.py's. While a host exists
this process holds its network namespace open, so a stopped host (its processes killed)
still has its address and refuses connections, as a machine whose sshd died.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sysconfig
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.nodes.netns import (
    PREFIX,
    HostError,
    Veth,
    check_subnet_free,
    kill_all_in,
    make_veth,
    move_into,
    netns_of,
    node_mark,
    pids_in,
    remove_leftovers,
    remove_veth,
)

SSHD = Path("/usr/sbin/sshd")
NODE_ROOT = Path("/var/lib/polybuild")  # polybuild.dataroot.SYSTEM_ROOT, root's data root
# Inside the node: sshd's files, bound into the node's fresh /run. sshd's StrictModes wants
# every directory above authorized_keys owned by root and not writable by others, which the
# test's temp directory (under /tmp) is not; /run/pbt-node is.
NODE_SSHD_DIR = "/run/pbt-node"
_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")

# Runs as PID 1 of the node's PID namespace, in its mount namespace (private propagation):
# the node's own data root, /run and /tmp, binfmt_misc in its new /proc when ours has it
# (the emulators are the kernel's, shared); then, once a line on stdin says the network is
# ready, sshd in the foreground.
_NODE_INIT = """set -e
mount --bind "$1/root" /var/lib/polybuild
mount -t tmpfs -o mode=0755,nosuid,nodev pbt-run /run
mkdir -m 0755 /run/sshd "$3"
mount --bind "$1/sshd" "$3"
mount --bind "$1/tmp" /tmp
[ "$4" = binfmt ] && mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
# bash reads root's ~/.bashrc for every ssh command; this machine's (pyenv init, whose rehash
# waits on a lock a killed session can leave behind) is not the node's: PATH is sshd's SetEnv
if [ -f /root/.bashrc ]; then mount --bind /dev/null /root/.bashrc; fi
read -r _
exec "$2" -D -e -f "$3/sshd_config" </dev/null
"""


@dataclass(frozen=True, slots=True)
class SshHost:
    """One running test host, as the tests see it.

    `ssh_config` is the config of every host of the same SshHosts (so one file serves a
    builder with several nodes); `env` is this process's environment with
    POLYBUILD_SSH_CONFIG naming it, for subprocesses that run polybuild.
    """

    name: str
    alias: str  # the Host in ssh_config; the endpoint's host
    address: str  # the node's address, where its sshd listens
    gateway: str  # this machine as the node sees it (the client end of the veth)
    netns: str  # the node's network namespace, "net:[<inode>]" (netns.netns_of)
    veth: str  # this machine's end of the veth pair
    ssh_config: Path
    known_hosts: Path
    identity: Path  # the client's private key, authorised as root on the node
    data_root: Path  # the node's /var/lib/polybuild, as this machine sees it

    @property
    def endpoint(self) -> str:
        return f"ssh://root@{self.alias}"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "POLYBUILD_SSH_CONFIG": str(self.ssh_config)}

    def ssh_argv(self, *command: str, config: Path | None = None) -> list[str]:
        """`ssh -F <config> <alias> -- <command>`, the command quoted for the remote shell."""
        argv = ["ssh", "-F", str(config or self.ssh_config), self.alias]
        return [*argv, "--", shlex.join(command)] if command else argv

    def run(
        self,
        *command: str,
        input: str | None = None,
        timeout: float = 60,
        check: bool = False,
        config: Path | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run `command` on the node over ssh, as the product's client would reach it."""
        result = subprocess.run(
            self.ssh_argv(*command, config=config),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise HostError(
                f"{self.name}: {shlex.join(command)} exited {result.returncode}: {result.stderr}"
            )
        return result

    def pids(self) -> list[int]:
        """Every process in the host's network namespace (sshd, sessions, their children)."""
        return pids_in(self.netns)


@dataclass(frozen=True, slots=True)
class _Started:
    host: SshHost
    veth: Veth
    workdir: Path
    process: subprocess.Popen[bytes]
    netns_fd: int  # keeps the namespace (and the veth) alive after the processes die
    public_key: str  # the host's public key line: "<type> <base64>"


def write_ssh_config(path: Path, hosts: Iterable[SshHost], known_hosts: Path) -> None:
    """An ssh config for `hosts` that trusts exactly the keys in `known_hosts`."""
    blocks = []
    for host in hosts:
        blocks.append(
            f"Host {host.alias}\n"
            f"    HostName {host.address}\n"
            "    Port 22\n"
            "    User root\n"
            f"    IdentityFile {host.identity}\n"
            "    IdentitiesOnly yes\n"
            "    IdentityAgent none\n"
            f"    UserKnownHostsFile {known_hosts}\n"
            "    StrictHostKeyChecking yes\n"
            "    UpdateHostKeys no\n"
            "    BatchMode yes\n"
            "    ConnectTimeout 5\n"
            "    ControlMaster no\n"
            "    ControlPath none\n"
            "    LogLevel ERROR\n"
        )
    path.write_text("\n".join(blocks))
    path.chmod(0o600)


def _sshd_config(address: str) -> str:
    scripts = sysconfig.get_path("scripts")  # this venv's bin: the node's polybuild is ours
    path = f"{scripts}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return (
        f"ListenAddress {address}:22\n"
        f"HostKey {NODE_SSHD_DIR}/host_ed25519_key\n"
        f"AuthorizedKeysFile {NODE_SSHD_DIR}/authorized_keys\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        "UsePAM no\n"
        "StrictModes yes\n"
        "PidFile none\n"
        "PrintMotd no\n"
        "PrintLastLog no\n"
        "X11Forwarding no\n"
        "AllowAgentForwarding no\n"
        "PermitUserEnvironment no\n"
        f"SetEnv PATH={path}\n"
        "LogLevel VERBOSE\n"
    )


def _keygen(path: Path, comment: str) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def _wait_listening(address: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Return once sshd says it listens (no probe connection: it would log a failed login)."""
    ready = f"Server listening on {address} port 22."
    end = time.monotonic() + 10
    while ready not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise HostError(f"sshd for {address} exited {process.returncode}: {log.read_text()}")
        if time.monotonic() > end:
            raise HostError(f"sshd for {address} did not start in 10 s: {log.read_text()}")
        time.sleep(0.01)


class SshHosts:
    """A factory of test hosts sharing one client key, ssh config and known_hosts file.

    `hosts(name)` starts the host `name` (or returns the one already made); `stop(name)`
    kills what runs on it (a node that dies), `remove(name)` and `close()` remove it all:
    processes, namespaces, veth pair, files. A failed start removes what it made.
    """

    def __init__(self, workdir: Path) -> None:
        if not SSHD.exists():
            raise HostError(f"{SSHD} is missing: apt-get install openssh-server (scripts/setup)")
        self.workdir = workdir
        self.ssh_config = workdir / "ssh_config"
        self.known_hosts = workdir / "known_hosts"
        self.identity = workdir / "client_ed25519"
        self._started: dict[str, _Started] = {}
        remove_leftovers()
        check_subnet_free()
        workdir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._client_key = _keygen(self.identity, "pbt-client")
        self._write_client_files()

    def __call__(self, name: str) -> SshHost:
        if name in self._started:
            return self._started[name].host
        if not _NAME.fullmatch(name):
            raise HostError(f"a test host's name is [a-z][a-z0-9-]{{0,19}}, not {name!r}")
        veth = make_veth()
        workdir = self.workdir / name
        process, netns_fd = None, None
        try:
            _make_node_files(workdir, veth.address, self._client_key)
            process = _start_node(workdir)
            netns_fd = _wait_unshared(process)
            netns = netns_of(process.pid)
            move_into(veth, process.pid)
            assert process.stdin is not None
            process.stdin.write(b"ready\n")
            process.stdin.close()
            _wait_listening(veth.address, process, workdir / "sshd.log")
        except BaseException:
            _teardown(veth, workdir, process, netns_fd)
            raise
        host = SshHost(
            name=name,
            alias=f"{PREFIX}{name}",
            address=veth.address,
            gateway=veth.gateway,
            netns=netns,
            veth=veth.name,
            ssh_config=self.ssh_config,
            known_hosts=self.known_hosts,
            identity=self.identity,
            data_root=workdir / "root",
        )
        key = " ".join((workdir / "sshd" / "host_ed25519_key.pub").read_text().split()[:2])
        self._started[name] = _Started(host, veth, workdir, process, netns_fd, key)
        self._write_client_files()
        return host

    @property
    def hosts(self) -> Mapping[str, SshHost]:
        return {name: started.host for name, started in self._started.items()}

    def stop(self, name: str) -> None:
        """The node dies: sshd, its sessions and what they run are killed at once; the
        address and the config entry stay (connections are refused), until remove/close."""
        started = self._started[name]
        _kill(started.process, started.host.netns)

    def remove(self, name: str) -> None:
        started = self._started.pop(name)
        self._write_client_files()
        _teardown(started.veth, started.workdir, started.process, started.netns_fd)

    def close(self) -> None:
        errors = []
        for name in list(self._started):
            try:
                self.remove(name)
            except HostError as exc:
                errors.append(str(exc))
        if errors:
            raise HostError("; ".join(errors))

    def _write_client_files(self) -> None:
        lines = [f"{s.host.alias},{s.host.address} {s.public_key}" for s in self._started.values()]
        self.known_hosts.write_text("".join(line + "\n" for line in lines))
        write_ssh_config(self.ssh_config, self.hosts.values(), self.known_hosts)


def _make_node_files(workdir: Path, address: str, client_key: str) -> None:
    """The node's data root and /tmp, and sshd's config, host key and authorized_keys."""
    for sub, mode in (("", 0o700), ("root", 0o700), ("sshd", 0o700), ("tmp", 0o1777)):
        (workdir / sub).mkdir(mode=mode, exist_ok=True)
        (workdir / sub).chmod(mode)  # mkdir's mode is masked by the umask
    _keygen(workdir / "sshd" / "host_ed25519_key", f"pbt-host-{workdir.name}")
    authorized = workdir / "sshd" / "authorized_keys"
    authorized.write_text(client_key + "\n")
    authorized.chmod(0o600)
    (workdir / "sshd" / "sshd_config").write_text(_sshd_config(address))
    NODE_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)  # the mount point, if missing


def _start_node(workdir: Path) -> subprocess.Popen[bytes]:
    """The node's init in new network, mount and PID namespaces, waiting for its network."""
    namespaces = ["--net", "--mount", "--propagation", "private", "--pid", "--fork"]
    binfmt = "binfmt" if os.path.ismount("/proc/sys/fs/binfmt_misc") else "none"
    init = ["sh", "-c", _NODE_INIT, node_mark(), str(workdir), str(SSHD), NODE_SSHD_DIR, binfmt]
    with open(workdir / "sshd.log", "wb") as log:
        return subprocess.Popen(
            ["unshare", *namespaces, "--mount-proc", "--kill-child", "--", *init],
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_unshared(process: subprocess.Popen[bytes]) -> int:
    """Once `unshare` is in its new network namespace: a descriptor that holds it."""
    ours = netns_of(os.getpid())
    end = time.monotonic() + 10
    while True:
        try:
            if netns_of(process.pid) != ours:
                return os.open(f"/proc/{process.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            pass  # it exited: said below
        if process.poll() is not None or time.monotonic() > end:
            raise HostError(f"unshare did not make the node's namespaces ({process.returncode})")
        time.sleep(0.005)


def _kill(process: subprocess.Popen[bytes], netns: str | None) -> None:
    if process.poll() is None:
        process.kill()  # unshare --kill-child: the node's PID 1 dies, and with it the rest
    process.wait(timeout=10)
    if netns is not None:
        kill_all_in(netns)  # anything that left the PID namespace's reach


def _teardown(
    veth: Veth, workdir: Path, process: subprocess.Popen[bytes] | None, netns_fd: int | None
) -> None:
    netns = os.readlink(f"/proc/self/fd/{netns_fd}") if netns_fd is not None else None
    if process is not None:
        _kill(process, netns)  # first: its connections close while the veth still carries them
    remove_veth(veth)
    if netns_fd is not None:
        os.close(netns_fd)  # the namespace is freed with its last reference
    shutil.rmtree(workdir, ignore_errors=True)
