"""Run container processes with runc: one bundle per process, cleaned up whatever happens."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shlex
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from typing import IO

from polybuild.errors import ExecutionError
from polybuild.executor import emulation
from polybuild.executor.network import private_network, remove_namespace, resolv_conf
from polybuild.executor.process import ExitStatus, Process
from polybuild.executor.spec import build_spec
from polybuild.executor.user import resolve_user_in_root
from polybuild.rootfs import DIR_FLAGS, resolve_in_root
from polybuild.syscalls import pid_alive

Stream = int | IO[bytes] | IO[str] | None
HEREDOC_SCRIPTS = "/dev/pipes"  # where RUN heredocs with a shebang are mounted, as BuildKit


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """Make runc die with polybuild (setpriv, not preexec_fn: builds run it from threads).

    A container left running anyway is removed by the next cleanup_stale().
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv


def _missing_destinations(rootfs: Path, destinations: list[str]) -> list[tuple[str, ...]]:
    """Paths runc will create in the root filesystem for mount targets, as components
    relative to the root: each missing target and each of its missing parents, outermost
    first (outside /dev, /proc and /sys)."""
    missing: list[tuple[str, ...]] = []
    for destination in destinations:
        if destination.split("/")[1] in ("dev", "proc", "sys"):
            continue
        path = resolve_in_root(rootfs, destination)
        chain = []
        while path != rootfs and not os.path.lexists(path):
            chain.append(path.relative_to(rootfs).parts)
            path = path.parent
        missing.extend(p for p in reversed(chain) if p not in missing)
    return missing


def _remove_stubs(rootfs: Path, stubs: list[tuple[str, ...]]) -> None:
    """Remove what runc created for mount targets, as BuildKit's MountStubsCleaner does:
    exactly those paths, deepest first, and only while still an empty file or directory,
    so nothing the step itself wrote is ever removed.

    The step ran in this tree and may have replaced a stub's parent with a symlink to a
    host path: every parent is opened by fd with O_NOFOLLOW, and a stub whose parents are
    no longer plain directories is left alone.
    """
    try:
        root_fd = os.open(rootfs, DIR_FLAGS)
    except OSError:
        return
    try:
        for parts in sorted(stubs, key=len, reverse=True):
            with contextlib.suppress(OSError):
                _remove_stub(root_fd, parts)
    finally:
        os.close(root_fd)


def _remove_stub(root_fd: int, parts: tuple[str, ...]) -> None:
    fds = [os.dup(root_fd)]
    try:
        for part in parts[:-1]:
            fds.append(os.open(part, DIR_FLAGS, dir_fd=fds[-1]))  # ELOOP on a symlink
        parent, name = fds[-1], parts[-1]
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            os.rmdir(name, dir_fd=parent)  # fails (and is kept) unless empty
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            os.unlink(name, dir_fd=parent)
    finally:
        for fd in fds:
            os.close(fd)


def _check_mount_targets(rootfs: Path, process: Process) -> None:
    """A step's own mounts may not land on /dev, /proc or /sys, not even through a symlink in
    the image: runc before 1.2.8 can be made to mask or write host paths through mounts over
    its own set-up there (CVE-2025-31133, CVE-2025-52565)."""
    for mount in process.mounts:
        if mount.destination.rstrip("/") == HEREDOC_SCRIPTS:
            continue  # ours, not the step's: its own mount on runc's fresh /dev tmpfs
        resolved = resolve_in_root(rootfs, mount.destination).relative_to(rootfs).parts
        if not resolved or resolved[0] in ("dev", "proc", "sys"):
            shown = "/" + "/".join(resolved)
            raise ExecutionError(
                f"mount target {mount.destination} resolves to {shown} in the root filesystem; "
                "mounts on /, /dev, /proc or /sys are not allowed"
            )


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


class RuncExecutor:
    """Runs one process per container with `runc run`, state kept under `state_dir`."""

    def __init__(self, state_dir: Path, runtime: str = "runc") -> None:
        self.state_dir = state_dir
        self.runtime = runtime
        self.runc_root = state_dir / "runc"
        self.bundles = state_dir / "bundles"
        self._active: set[str] = set()
        self._active_lock = threading.Lock()

    def _runc(self, *args: str) -> list[str]:
        return [self.runtime, "--root", str(self.runc_root), *args]

    def _check_runtime(self) -> str:
        path = shutil.which(self.runtime)
        if path is None:
            raise ExecutionError(
                f"the OCI runtime {self.runtime!r} is not installed",
                hint="apt-get install runc",
            )
        if os.geteuid() != 0:
            raise ExecutionError(
                "running containers needs root (rootless mode is not supported yet)",
                hint="run polybuild as root",
            )
        return path

    def run(
        self,
        rootfs: Path,
        process: Process,
        *,
        stdin: Stream = subprocess.DEVNULL,
        stdout: Stream = None,
        stderr: Stream = None,
    ) -> ExitStatus:
        """Run `process` in `rootfs` (a prepared, writable directory) and wait for it."""
        self._check_runtime()
        self.cleanup_stale()
        container_id = f"pb-{os.getpid()}-{secrets.token_hex(6)}"
        bundle = self.bundles / container_id
        # Private: config.json holds the process environment (secrets with env=).
        self.bundles.mkdir(mode=0o700, parents=True, exist_ok=True)
        bundle.mkdir(mode=0o700)
        try:
            user = resolve_user_in_root(rootfs, process.user)
            plan = emulation.plan(process, rootfs)
            if plan.env:
                process = dataclasses.replace(process, env=(*process.env, *plan.env))
            etc_files = self._etc_files(bundle, process)
            netns = bundle / "netns"
            spec = build_spec(
                rootfs.resolve(),
                process,
                user,
                args=list(plan.args),
                etc_files=etc_files,
                netns=netns,
            )
            spec["mounts"].extend(
                {
                    "destination": m.destination,
                    "type": m.type,
                    "source": m.source,
                    "options": ["rbind", *m.options],
                }
                for m in plan.mounts
            )
            _check_mount_targets(rootfs, process)
            _write_private(bundle / "config.json", json.dumps(spec))
            stubs = _missing_destinations(rootfs, [m["destination"] for m in spec["mounts"]])
            try:
                with contextlib.ExitStack() as stack:
                    if process.network == "private":
                        stack.enter_context(private_network(netns))
                    return self._run_bundle(
                        container_id, bundle, process.timeout, stdin, stdout, stderr
                    )
            finally:
                _remove_stubs(rootfs, stubs)
        finally:
            self._remove(container_id, bundle)

    def _etc_files(self, bundle: Path, process: Process) -> dict[str, Path]:
        """/etc/hosts, /etc/hostname and /etc/resolv.conf for this container, as Docker does."""
        files: dict[str, Path] = {}
        hosts = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
        hosts += [f"{ip}\t{name}" for name, ip in process.extra_hosts]
        if process.network != "none":
            hosts.append(f"127.0.1.1\t{process.hostname}")
        (bundle / "hosts").write_text("\n".join(hosts) + "\n")
        files["/etc/hosts"] = bundle / "hosts"
        (bundle / "hostname").write_text(process.hostname + "\n")
        files["/etc/hostname"] = bundle / "hostname"
        if process.network != "none":
            resolv = Path("/etc/resolv.conf")
            text = resolv.read_text() if resolv.exists() else ""
            if process.network == "private":
                text = resolv_conf(text)
            (bundle / "resolv.conf").write_text(text)
            files["/etc/resolv.conf"] = bundle / "resolv.conf"
        return files

    def _start_reaper(self, container_id: str) -> tuple[subprocess.Popen[bytes], int] | None:
        """A watcher that kills the container if polybuild dies first (even by SIGKILL).

        runc dies with us (its parent-death signal), but the container's processes would
        live on, reparented to init. The watcher holds the read end of a pipe whose write
        end is ours: a clean finish writes "done"; our death closes it, and it kills and
        deletes the container.
        """
        runc = shutil.which(self.runtime)
        if runc is None:
            return None
        root = shlex.quote(str(self.runc_root))
        cid = shlex.quote(container_id)
        exe = shlex.quote(runc)
        script = (
            'read -r state; [ "$state" = done ] && exit 0; '
            f"{exe} --root {root} kill {cid} KILL; {exe} --root {root} delete --force {cid}"
        )
        read_end, write_end = os.pipe()
        try:
            watcher = subprocess.Popen(
                ["/bin/sh", "-c", script],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C to our process group is ours to handle
            )
        except OSError:
            os.close(write_end)
            return None
        finally:
            os.close(read_end)
        return watcher, write_end

    def _run_bundle(
        self,
        container_id: str,
        bundle: Path,
        timeout: float | None,
        stdin: Stream,
        stdout: Stream,
        stderr: Stream,
    ) -> ExitStatus:
        self.runc_root.mkdir(parents=True, exist_ok=True)
        with self._active_lock:
            self._active.add(container_id)
        reaper = self._start_reaper(container_id)
        try:
            argv = self._runc("run", "--bundle", str(bundle), container_id)
            try:
                proc = subprocess.Popen(
                    _with_parent_death_signal(argv), stdin=stdin, stdout=stdout, stderr=stderr
                )
            except OSError as exc:
                raise ExecutionError(f"cannot start {self.runtime}: {exc.strerror}") from exc
            return self._wait_container(container_id, proc, timeout)
        finally:
            if reaper is not None:
                watcher, write_end = reaper
                with contextlib.suppress(OSError):
                    os.write(write_end, b"done\n")
                os.close(write_end)
                watcher.wait()
            with self._active_lock:
                self._active.discard(container_id)

    def kill_all(self) -> None:
        """SIGKILL every container this executor is running (a failed build cancels the rest)."""
        with self._active_lock:
            active = list(self._active)
        for container_id in active:
            self._kill(container_id)

    def _kill(self, container_id: str) -> None:
        subprocess.run(self._runc("kill", container_id, "KILL"), capture_output=True, check=False)

    def _wait_container(
        self, container_id: str, proc: subprocess.Popen[bytes], timeout: float | None
    ) -> ExitStatus:
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill(container_id)
            proc.wait()
            return ExitStatus(137, timed_out=True)
        except BaseException:
            # Interrupted (Ctrl-C, cancellation): stop the container before re-raising.
            self._kill(container_id)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            raise
        return ExitStatus(code if code >= 0 else 128 - code)

    def _remove(self, container_id: str, bundle: Path) -> None:
        subprocess.run(
            self._runc("delete", "--force", container_id), capture_output=True, check=False
        )
        remove_namespace(bundle / "netns")  # a bind mount: rmtree cannot remove it
        shutil.rmtree(bundle, ignore_errors=True)

    def cleanup_stale(self) -> list[str]:
        """Remove containers and bundles left by polybuild processes that no longer exist."""
        removed: list[str] = []
        if not self.bundles.exists():
            return removed
        for bundle in self.bundles.iterdir():
            parts = bundle.name.split("-")
            if len(parts) != 3 or parts[0] != "pb" or not parts[1].isdigit():
                continue
            if pid_alive(int(parts[1])):
                continue
            self._remove(bundle.name, bundle)
            removed.append(bundle.name)
        return removed
