"""The network side of the test hosts: veth pairs into the hosts' network namespaces, the
processes in a namespace, and the leftovers of killed runs.

A host's network namespace belongs to its processes (made by `unshare --net`, never named
under /run/netns: `ip netns add` shares that directory between all its users, and runs that
add and delete namespaces at the same time there can hide each other's mounts). Everything
carries the prefix `pbt-` and the pid of the test process that made it, so a later run can
tell a dead run's leftovers from another live run's hosts: the veth `pbt-<pid>h<N>` (its peer
`pbt-<pid>n<N>`), where N picks the host's /30 out of SUBNET, and the argument
`pbt-node-<pid>` of the process that holds the namespaces.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PREFIX = "pbt-"
SUBNET = ipaddress.ip_network("10.213.0.0/16")
_LOCK = Path("/run/lock/polybuild-test-hosts.lock")  # one allocation of N at a time
_VETH = re.compile(re.escape(PREFIX) + r"(\d+)[hn](\d+)")
_MARK = re.compile(re.escape(PREFIX) + r"node-(\d+)")


class HostError(RuntimeError):
    """A test host could not be made, reached or removed (test infrastructure, not product)."""


@dataclass(frozen=True, slots=True)
class Veth:
    """One host's veth pair: `name` here with `gateway`, `peer` in the node with `address`."""

    name: str
    peer: str
    gateway: str
    address: str


def node_mark() -> str:
    """The argument that marks a node's processes as this test process's."""
    return f"{PREFIX}node-{os.getpid()}"


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise HostError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def ip_json(*args: str) -> list[dict[str, object]]:
    out = ip("-j", *args).stdout.strip()
    loaded: list[dict[str, object]] = json.loads(out) if out else []
    return loaded


def link_names() -> list[str]:
    return [str(link["ifname"]) for link in ip_json("link", "show")]


def netns_of(pid: int) -> str:
    """The identity of a process's network namespace, as `net:[<inode>]`."""
    return os.readlink(f"/proc/{pid}/ns/net")


def _processes() -> Iterator[int]:
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            yield int(entry.name)


def pids_in(netns: str) -> list[int]:
    """The processes whose network namespace is `netns` (see netns_of)."""
    found = []
    for pid in _processes():
        with contextlib.suppress(OSError):  # gone meanwhile, or a kernel thread
            if netns_of(pid) == netns:
                found.append(pid)
    return found


def kill_all_in(netns: str, deadline: float = 5.0) -> None:
    """SIGKILL every process in `netns` and wait until none is left."""
    end = time.monotonic() + deadline
    while pids := pids_in(netns):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > end:
            raise HostError(f"processes {pids} in {netns} survive SIGKILL")
        time.sleep(0.02)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers() -> None:
    """Kill the nodes and delete the veths of test runs whose process is gone."""
    for pid in _processes():
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv:
            mark = _MARK.fullmatch(arg.decode(errors="replace"))
            if mark and not _pid_alive(int(mark.group(1))):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)  # unshare --kill-child: its node goes too
    for name in link_names():
        match = _VETH.fullmatch(name)
        if match and not _pid_alive(int(match.group(1))):
            ip("link", "delete", name, check=False)


def check_subnet_free() -> None:
    """Fail unless no address or route of this machine (except ours) is inside SUBNET."""
    for entry in ip_json("-4", "addr", "show"):
        dev = str(entry.get("ifname", ""))
        infos = entry.get("addr_info", [])
        assert isinstance(infos, list)
        for info in infos:
            net = ipaddress.ip_network(f"{info['local']}/{info['prefixlen']}", strict=False)
            if net.overlaps(SUBNET) and not dev.startswith(PREFIX):
                raise HostError(f"{dev} has {net}, inside the test hosts' {SUBNET}")
    for route in ip_json("-4", "route", "show", "table", "all"):
        dst = str(route.get("dst", ""))
        dev = str(route.get("dev", ""))
        if dst in ("", "default") or dev.startswith(PREFIX):
            continue
        net = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
        if net.overlaps(SUBNET):
            raise HostError(f"route {dst} via {dev} overlaps the test hosts' {SUBNET}")


def _subnets_in_use() -> set[int]:
    used = set()
    for entry in ip_json("-4", "addr", "show"):
        infos = entry.get("addr_info", [])
        assert isinstance(infos, list)
        for info in infos:
            address = ipaddress.ip_address(str(info["local"]))
            if address in SUBNET:
                used.add((int(address) - int(SUBNET.network_address)) // 256)
    return used


def make_veth() -> Veth:
    """A veth pair with the first free /30 of SUBNET on this machine's end (N in 1..254)."""
    _LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # until our address is on: then N is seen as used
        free = sorted(set(range(1, 255)) - _subnets_in_use())
        if not free:
            raise HostError(f"no free /30 left in {SUBNET}")
        index = free[0]
        base = SUBNET.network_address + 256 * index
        veth = Veth(
            name=f"{PREFIX}{os.getpid()}h{index}",
            peer=f"{PREFIX}{os.getpid()}n{index}",
            gateway=str(base + 1),
            address=str(base + 2),
        )
        ip("link", "add", veth.name, "type", "veth", "peer", "name", veth.peer)
        try:
            ip("addr", "add", f"{veth.gateway}/30", "dev", veth.name)
            ip("link", "set", veth.name, "up")
        except BaseException:
            remove_veth(veth)
            raise
    return veth


def move_into(veth: Veth, pid: int) -> None:
    """Move the veth's peer into the network namespace of `pid`, with its address, and up."""
    ip("link", "set", veth.peer, "netns", str(pid))
    inside = ["nsenter", f"--target={pid}", "--net", "ip"]
    for args in (
        ("addr", "add", f"{veth.address}/30", "dev", veth.peer),
        ("link", "set", veth.peer, "up"),
        ("link", "set", "lo", "up"),
    ):
        result = subprocess.run([*inside, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise HostError(f"in the node: ip {' '.join(args)}: {result.stderr.strip()}")


def remove_veth(veth: Veth) -> None:
    """Delete the pair (both ends go), if it is still there (idempotent)."""
    if veth.name in link_names():
        ip("link", "delete", veth.name, check=False)
