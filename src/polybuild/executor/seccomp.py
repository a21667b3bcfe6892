"""A seccomp filter for containers: what Docker's default profile refuses to a process that
lacks CAP_SYS_ADMIN and friends, written as a deny-list over an allow-by-default filter.

Docker's profile is an allow-list of several hundred syscalls; the refusals that matter for
a build container are the ones below (kernel keyrings, modules, new namespaces, mounts,
clocks, tracing). A deny-list keeps emulated steps working: QEMU issues host syscalls on
behalf of foreign binaries, and an allow-list would have to know all of them.
"""

from __future__ import annotations

import errno
import platform as stdlib_platform
from typing import Any

# Refused outright (Docker: not in the allow-list, or only with a capability we never give).
DENIED = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "ioperm",
    "io_uring_enter",  # Docker dropped io_uring from its profile (a history of kernel bugs)
    "io_uring_register",
    "io_uring_setup",
    "iopl",
    "kcmp",  # kcmp and pidfd_getfd: Docker allows them only with CAP_SYS_PTRACE
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "nfsservctl",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pidfd_getfd",
    "pivot_root",
    "query_module",
    "quotactl",
    "reboot",
    "request_key",
    "setdomainname",
    "sethostname",
    "setns",
    "settimeofday",
    "stime",
    "swapoff",
    "swapon",
    "sysfs",
    "syslog",
    "_sysctl",
    "umount",
    "umount2",
    "unshare",
    "uselib",
    "userfaultfd",
    "ustat",
    "vm86",
    "vm86old",
]

# vsock is not network-namespaced: a step could reach the hypervisor's services whatever its
# --network (Docker refuses socket(AF_VSOCK, ...) too).
AF_VSOCK = 40

# clone(2) may not create namespaces (the flags argument, masked bit by bit).
NAMESPACE_FLAGS = {
    "CLONE_NEWNS": 0x00020000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUSER": 0x10000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWNET": 0x40000000,
}

_ARCHITECTURES = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
    "ppc64le": ["SCMP_ARCH_PPC64LE"],
    "s390x": ["SCMP_ARCH_S390X", "SCMP_ARCH_S390"],
    "riscv64": ["SCMP_ARCH_RISCV64"],
}


def default_profile(machine: str | None = None) -> dict[str, Any]:
    """The `linux.seccomp` section of an OCI runtime spec for this host."""
    machine = machine or stdlib_platform.machine()
    # On s390 the clone flags are the second argument, elsewhere the first.
    flags_index = 1 if machine.startswith("s390") else 0
    rules: list[dict[str, Any]] = [
        {"names": list(DENIED), "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EPERM},
        # clone3 passes its flags in memory, where a filter cannot look: answering ENOSYS
        # makes the C library fall back to clone(2), whose flags are checked (as Docker).
        {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSYS},
        {
            "names": ["socket"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EAFNOSUPPORT,
            "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_EQ"}],
        },
    ]
    for flag in NAMESPACE_FLAGS.values():
        rules.append({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": errno.EPERM,
            "args": [{"index": flags_index, "value": flag, "valueTwo": flag,
                      "op": "SCMP_CMP_MASKED_EQ"}],
        })  # fmt: skip
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": rules}
    architectures = _ARCHITECTURES.get(machine)
    if architectures:
        profile["architectures"] = architectures
    return profile
