"""Real containers with runc: platforms, identity, isolation, streams, limits, clean-up."""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild.errors import EmulationError, ExecutionError
from polybuild.executor import Mount, Process, RuncExecutor, emulation
from polybuild.platforms import parse
from polybuild.testing.busybox import make_rootfs
from tests.conftest import require_platforms, require_root, require_tool


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[RuncExecutor]:
    require_root()
    require_tool("runc")
    ex = RuncExecutor(tmp_path / "state")
    yield ex
    assert list((tmp_path / "state" / "bundles").iterdir()) == [], "bundle left behind"
    listed = subprocess.run(
        ["runc", "--root", str(ex.runc_root), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.stdout.strip() == "", "runc container left behind"


def run(ex: RuncExecutor, root: Path, script: str, **kwargs: object) -> tuple[int, str, str]:
    out, err = root.parent / "out", root.parent / "err"
    with open(out, "wb") as o, open(err, "wb") as e:
        status = ex.run(
            root,
            Process(("/bin/sh", "-c", script), **kwargs),  # type: ignore[arg-type]
            stdout=o,
            stderr=e,
        )
    return status.code, out.read_text(), err.read_text()


@pytest.mark.parametrize(
    ("arch", "platform", "machine"),
    [
        ("amd64", "linux/amd64", "x86_64"),
        pytest.param("arm64", "linux/arm64", "aarch64", marks=pytest.mark.qemu),
        pytest.param("armhf", "linux/arm/v7", "armv7l", marks=pytest.mark.qemu),
    ],
)
@pytest.mark.root
def test_uname_per_platform(
    executor: RuncExecutor, tmp_path: Path, arch: str, platform: str, machine: str
) -> None:
    require_platforms(platform)
    root = make_rootfs(arch, tmp_path / "rootfs")
    code, out, _ = run(executor, root, "uname -m", platform=parse(platform))
    assert (code, out.strip()) == (0, machine)


@pytest.mark.root
def test_env_cwd_user_and_hostname(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    (root / "work").mkdir()
    code, out, _ = run(
        executor,
        root,
        'echo "$FOO|$(pwd)|$(id -u):$(id -g)|$HOME|$(hostname)"',
        env=("FOO=bar baz",),
        cwd="/work",
        user="nobody",
        hostname="box",
    )
    assert code == 0
    assert out.strip() == "bar baz|/work|65534:65534|/nonexistent|box"


@pytest.mark.root
def test_exit_code_and_stderr(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    code, out, err = run(executor, root, "echo to-out; echo to-err >&2; exit 7")
    assert (code, out, err) == (7, "to-out\n", "to-err\n")


@pytest.mark.root
def test_signal_death_is_128_plus_n(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    code, _, _ = run(executor, root, "sleep 30 & kill -TERM $! ; wait $!; exit $?")
    assert code == 128 + signal.SIGTERM


@pytest.mark.root
def test_stdin_is_streamed(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    (tmp_path / "in").write_text("hello from stdin\n")
    with open(tmp_path / "in", "rb") as stdin, open(tmp_path / "o", "wb") as out:
        status = executor.run(root, Process(("/bin/cat",)), stdin=stdin, stdout=out)
    assert status.ok and (tmp_path / "o").read_text() == "hello from stdin\n"


@pytest.mark.root
def test_timeout_kills_the_container(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    started = time.monotonic()
    status = executor.run(root, Process(("/bin/sleep", "60"), timeout=1.0))
    assert status.timed_out and not status.ok
    assert time.monotonic() - started < 20


@pytest.mark.root
def test_network_none_has_only_loopback(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    script = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ,"
    _, isolated, _ = run(executor, root, script, network="none")
    assert isolated == "lo,"
    _, host, _ = run(executor, root, script, network="host")
    host_ifaces = sorted(
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    assert host == ",".join(host_ifaces) + ","


@pytest.mark.root
def test_capabilities_are_dockers_default(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    _, out, _ = run(executor, root, "grep CapBnd /proc/self/status", network="none")
    assert int(out.split()[1], 16) == 0xA80425FB  # Docker's default bounding set
    _, out, _ = run(executor, root, "grep CapBnd /proc/self/status")
    assert int(out.split()[1], 16) == 0xA80425FB & ~(1 << 13)  # no NET_RAW with slirp4netns
    _, out, _ = run(executor, root, "grep CapBnd /proc/self/status", security="insecure")
    assert int(out.split()[1], 16) > 0xA80425FB


@pytest.mark.root
def test_mounts_bind_readonly_and_tmpfs(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "data").write_text("payload")
    mounts = (
        Mount("/mnt/ro", "bind", str(shared), ("ro",)),
        Mount("/mnt/rw", "bind", str(shared)),
        Mount("/scratch", "tmpfs", "tmpfs", ("size=1m",)),
    )
    code, out, _ = run(
        executor,
        root,
        "cat /mnt/ro/data; touch /mnt/ro/x 2>/dev/null && echo BAD; "
        "echo w > /mnt/rw/written; echo t > /scratch/t && grep -c tmpfs /proc/mounts",
        mounts=mounts,
    )
    assert code == 0 and out.startswith("payload") and "BAD" not in out
    assert (shared / "written").read_text() == "w\n"
    # runc's mount targets are removed afterwards: nothing the step did not write remains.
    assert not (root / "mnt").exists() and not (root / "scratch").exists()
    assert not (root / "etc" / "hosts").exists() and not (root / "etc" / "resolv.conf").exists()


@pytest.mark.root
def test_user_not_found_is_a_clear_error(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    with pytest.raises(ExecutionError, match="unable to find user ghost"):
        executor.run(root, Process(("/bin/true",), user="ghost"))


@pytest.mark.root
@pytest.mark.qemu
def test_bind_mounted_emulator_fallback(
    executor: RuncExecutor, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an F-flag handler, QEMU is bind-mounted and put before the command."""
    require_tool("qemu-aarch64-static")
    native = (parse("linux/amd64"),)
    monkeypatch.setattr(emulation, "runnable_platforms", lambda: native)
    root = make_rootfs("arm64", tmp_path / "rootfs")
    plan = emulation.plan(Process(("sh", "-c", "x"), platform=parse("linux/arm64")), root)
    assert plan.args[:4] == (emulation.EMULATOR_MOUNT, "-0", "sh", "/bin/sh")
    code, out, _ = run(executor, root, "uname -m", platform=parse("linux/arm64"))
    assert (code, out.strip()) == (0, "aarch64")


def test_no_emulator_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emulation, "runnable_platforms", lambda: (parse("linux/amd64"),))
    monkeypatch.setattr(emulation, "find_interpreter", lambda emulator: None)
    with pytest.raises(EmulationError) as info:
        emulation.plan(Process(("/bin/sh",), platform=parse("linux/s390x")), tmp_path)
    assert "polybuild binfmt --install s390x" in (info.value.hint or "")


@pytest.mark.root
def test_sigkilled_polybuild_leaves_nothing_after_restart(tmp_path: Path) -> None:
    require_root()
    state = tmp_path / "state"
    root = make_rootfs("amd64", tmp_path / "rootfs")
    marker = "polybuild-sigkill-test-" + str(os.getpid())
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
        from pathlib import Path
        from polybuild.executor import Process, RuncExecutor
        RuncExecutor(Path({str(state)!r})).run(Path({str(root)!r}),
            Process(("/bin/sh", "-c", "sleep 300; : {marker}")))
    """),
        ]
    )
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline
        and marker.encode()
        not in subprocess.run(["ps", "-eo", "args"], capture_output=True, check=False).stdout
    ):
        time.sleep(0.2)
    ps = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, text=True, check=False)
    child.send_signal(signal.SIGKILL)
    child.wait()
    slirps = [
        line for line in ps.stdout.splitlines() if "slirp4netns" in line and str(state) in line
    ]
    assert slirps, "the container's private network (slirp4netns) was not running"
    executor = RuncExecutor(state)
    assert len(executor.cleanup_stale()) == 1
    assert list((state / "bundles").iterdir()) == []
    listed = subprocess.run(
        ["runc", "--root", str(executor.runc_root), "list", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert listed.stdout.strip() == ""
    time.sleep(0.5)
    ps = subprocess.run(["ps", "-ewwo", "args"], capture_output=True, check=False).stdout
    assert marker.encode() not in ps
    left = [line for line in ps.splitlines() if b"slirp4netns" in line and bytes(state) in line]
    assert not left, left  # slirp4netns dies when its exit pipe closes with polybuild
    assert str(state) not in Path("/proc/self/mountinfo").read_text()  # the netns bind mount


@pytest.mark.root
def test_seccomp_refuses_namespaces_and_keyrings(executor: RuncExecutor, tmp_path: Path) -> None:
    root = make_rootfs("amd64", tmp_path / "rootfs")
    script = (
        "grep '^Seccomp:' /proc/self/status | tr -d '\\t'; "
        "busybox unshare -U -r true 2>/dev/null; echo unshare=$?"
    )
    _, out, _ = run(executor, root, script)
    assert out.split() == ["Seccomp:2", "unshare=1"]
    _, out, _ = run(executor, root, script, security="insecure")
    assert out.split()[0] == "Seccomp:0"


def test_seccomp_profile_shape() -> None:
    from polybuild.executor.seccomp import default_profile

    profile = default_profile("x86_64")
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert "SCMP_ARCH_X86_64" in profile["architectures"]
    denied = {n for rule in profile["syscalls"] if "args" not in rule for n in rule["names"]}
    assert {"unshare", "keyctl", "mount", "bpf", "setns"} <= denied
    clone_rules = [r for r in profile["syscalls"] if r["names"] == ["clone"]]
    assert {r["args"][0]["value"] for r in clone_rules} >= {0x10000000, 0x40000000}
    assert default_profile("s390x")["syscalls"][-1]["args"][0]["index"] == 1


def _syscall_probe(number: int, args: tuple[int, int, int]) -> bytes:
    """An x86-64 program exiting with -(the syscall's result): its errno, or 256 - fd."""
    from polybuild.binfmt.elf import TARGETS, program

    code = b"".join(
        (
            b"\xbf" + struct.pack("<I", args[0]),  # mov edi, a0
            b"\xbe" + struct.pack("<I", args[1]),  # mov esi, a1
            b"\xba" + struct.pack("<I", args[2]),  # mov edx, a2
            b"\xb8" + struct.pack("<I", number),  # mov eax, number
            b"\x0f\x05",  # syscall
            b"\xf7\xd8",  # neg eax
            b"\x89\xc7",  # mov edi, eax
            b"\xb8\x3c\x00\x00\x00",  # mov eax, 60 (exit)
            b"\x0f\x05",  # syscall
        )
    )
    return program(dataclasses.replace(TARGETS["amd64"], code=code))


@pytest.mark.root
def test_seccomp_refuses_vsock_and_io_uring(executor: RuncExecutor, tmp_path: Path) -> None:
    """vsock is not network-namespaced (the hypervisor's services), io_uring is Docker-denied."""
    root = make_rootfs("amd64", tmp_path / "rootfs")
    probes = {"vsock": _syscall_probe(41, (40, 1, 0)), "uring": _syscall_probe(425, (1, 0, 0))}
    for name, elf in probes.items():
        (root / name).write_bytes(elf)
        (root / name).chmod(0o755)
    status, _, _ = run(executor, root, "/vsock")
    assert status == errno.EAFNOSUPPORT
    status, _, _ = run(executor, root, "/uring")
    assert status == errno.EPERM
    status, _, _ = run(executor, root, "/uring", security="insecure")
    assert status == errno.EFAULT  # the kernel looked at the (NULL) parameters
