"""Build an OCI runtime spec (config.json) for one container process, Docker's defaults."""

from __future__ import annotations

import resource
from pathlib import Path
from typing import Any

from polybuild.executor.cdi import apply_edits
from polybuild.executor.process import DEFAULT_PATH, Process
from polybuild.executor.seccomp import default_profile
from polybuild.executor.user import ResolvedUser

# Docker's (and BuildKit's RUN) default capability set.
DEFAULT_CAPABILITIES = tuple(
    "CAP_" + c
    for c in [
        "CHOWN",
        "DAC_OVERRIDE",
        "FSETID",
        "FOWNER",
        "MKNOD",
        "NET_RAW",
        "SETGID",
        "SETUID",
        "SETFCAP",
        "SETPCAP",
        "NET_BIND_SERVICE",
        "SYS_CHROOT",
        "KILL",
        "AUDIT_WRITE",
    ]
)
# --security=insecure: every capability, in kernel bit order (index = capability number).
ALL_CAPABILITIES = tuple(
    "CAP_" + c
    for c in [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ]
)
MASKED_PATHS = (
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
WANTED_NOFILE = 1048576


def own_capabilities() -> frozenset[str]:
    """The capabilities in our bounding set: a container cannot be given more than these."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return frozenset(ALL_CAPABILITIES)
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return frozenset(c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1)
    return frozenset(ALL_CAPABILITIES)


def nofile_limit() -> int:
    """Docker asks for 1048576 open files; the host's hard limit may be lower (20000 here)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        return WANTED_NOFILE
    return min(WANTED_NOFILE, hard)


def rlimits(process: Process, nofile: int) -> list[dict[str, Any]]:
    """Docker's open-files limit, then --ulimit's (which may replace it). -1 is unlimited."""
    limits = {"nofile": (nofile, nofile)}
    limits.update({name: (soft, hard) for name, soft, hard in process.ulimits})
    unlimited = 2**64 - 1  # RLIM_INFINITY as runc reads a uint64

    def value(limit: int) -> int:
        return unlimited if limit < 0 else limit

    return [
        {"type": f"RLIMIT_{name.upper()}", "soft": value(soft), "hard": value(hard)}
        for name, (soft, hard) in limits.items()
    ]


def environment(process: Process, user: ResolvedUser) -> list[str]:
    """The process environment with PATH and HOME filled in as Docker does."""
    env = list(process.env)
    if process.env_value("PATH") is None:
        env.insert(0, f"PATH={DEFAULT_PATH}")
    if process.env_value("HOME") is None:
        env.append(f"HOME={user.home or '/'}")
    return env


def _default_mounts(shm_size: int | None = None) -> list[dict[str, Any]]:
    mounts: list[dict[str, Any]] = [
        {
            "destination": "/proc",
            "type": "proc",
            "source": "proc",
            "options": ["nosuid", "noexec", "nodev"],
        },
        {
            "destination": "/dev",
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
        },
        {
            "destination": "/dev/pts",
            "type": "devpts",
            "source": "devpts",
            "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
        },
        {
            "destination": "/dev/shm",
            "type": "tmpfs",
            "source": "shm",
            "options": [
                "nosuid",
                "noexec",
                "nodev",
                "mode=1777",
                f"size={shm_size or 65536 << 10}",
            ],
        },
        {
            "destination": "/dev/mqueue",
            "type": "mqueue",
            "source": "mqueue",
            "options": ["nosuid", "noexec", "nodev"],
        },
    ]
    # A fresh sysfs, read-only, as runc and Docker: never the host's /sys (whose cgroup
    # mounts below would stay writable), and a read-only cgroup mount that shows only the
    # container's own cgroups (its own cgroup namespace).
    mounts.append(
        {
            "destination": "/sys",
            "type": "sysfs",
            "source": "sysfs",
            "options": ["nosuid", "noexec", "nodev", "ro"],
        }
    )
    mounts.append(
        {
            "destination": "/sys/fs/cgroup",
            "type": "cgroup",
            "source": "cgroup",
            "options": ["nosuid", "noexec", "nodev", "relatime", "ro"],
        }
    )
    return mounts


def build_spec(
    rootfs: Path,
    process: Process,
    user: ResolvedUser,
    *,
    args: list[str],
    etc_files: dict[str, Path],
    netns: Path | None = None,
) -> dict[str, Any]:
    """The config.json for running `args` (already emulator-prefixed) in `rootfs`.

    The network namespace: the host's for `host`, a new one with only loopback for `none`,
    and the persisted namespace `netns` (see executor.network) for `private`.
    """
    wanted = ALL_CAPABILITIES if process.security == "insecure" else DEFAULT_CAPABILITIES
    allowed = own_capabilities()
    capabilities = [c for c in wanted if c in allowed]
    sysctl: dict[str, str] = {}
    if process.network == "private" and process.security != "insecure":
        # slirp4netns forwards raw frames addressed to 127.0.0.1 to the host's loopback
        # (its --disable-host-loopback only guards the 10.0.2.2 alias): without NET_RAW a
        # step cannot forge them. ping keeps working through ICMP datagram sockets, as
        # Podman does.
        capabilities = [c for c in capabilities if c != "CAP_NET_RAW"]
        sysctl["net.ipv4.ping_group_range"] = "0 2147483647"
    namespaces: list[dict[str, str]] = [
        {"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")
    ]
    if process.network == "none":
        namespaces.append({"type": "network"})
    elif process.network == "private":
        if netns is None:
            raise ValueError("a private network needs its namespace path")
        namespaces.append({"type": "network", "path": str(netns)})
    elif process.network != "host":
        raise ValueError(f"unknown network mode {process.network!r}")
    mounts = _default_mounts(process.shm_size)
    for destination, source in sorted(etc_files.items()):
        mounts.append(
            {
                "destination": destination,
                "type": "bind",
                "source": str(source),
                "options": ["rbind", "ro"],
            }
        )
    for mount in process.mounts:
        options = list(mount.options)
        if mount.type == "bind" and "rbind" not in options and "bind" not in options:
            options.insert(0, "rbind")
        mounts.append(
            {
                "destination": mount.destination,
                "type": mount.type,
                "source": mount.source or mount.type,
                "options": options,
            }
        )
    nofile = nofile_limit()
    spec = {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {
                "uid": user.uid,
                "gid": user.gid,
                **({"additionalGids": list(user.additional_gids)} if user.additional_gids else {}),
            },
            "args": args,
            "env": environment(process, user),
            "cwd": process.cwd or "/",
            "capabilities": {k: capabilities for k in ("bounding", "effective", "permitted")},
            "rlimits": rlimits(process, nofile),
            "noNewPrivileges": False,
        },
        "root": {"path": str(rootfs), "readonly": False},
        "hostname": process.hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": namespaces,
            **({"sysctl": sysctl} if sysctl else {}),
            "maskedPaths": [] if process.security == "insecure" else list(MASKED_PATHS),
            "readonlyPaths": [] if process.security == "insecure" else list(READONLY_PATHS),
            "resources": {"devices": [{"allow": process.security == "insecure", "access": "rwm"}]},
            **({} if process.security == "insecure" else {"seccomp": default_profile()}),
        },
    }
    if process.cdi is not None:
        apply_edits(spec, process.cdi)
    return spec
