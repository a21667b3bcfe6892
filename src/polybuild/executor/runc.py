"""Run container processes with runc: one bundle per process, cleaned up whatever happens."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import secrets
import shutil
import stat
import subprocess
import threading
from pathlib import Path
from typing import IO

from polybuild.errors import ExecutionError
from polybuild.executor import emulation
from polybuild.executor.process import ExitStatus, Process
from polybuild.executor.spec import build_spec
from polybuild.executor.user import resolve_user_in_root
from polybuild.rootfs import resolve_in_root
from polybuild.syscalls import pid_alive

Stream = int | IO[bytes] | IO[str] | None


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    """Make runc die with polybuild (setpriv, not preexec_fn: builds run it from threads).

    A container left running anyway is removed by the next cleanup_stale().
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", *argv] if setpriv else argv


def _missing_destinations(rootfs: Path, destinations: list[str]) -> list[Path]:
    """Paths runc will create in the root filesystem for mount targets: each missing target
    and each of its missing parents, outermost first (outside /dev, /proc and /sys)."""
    missing: list[Path] = []
    for destination in destinations:
        if destination.split("/")[1] in ("dev", "proc", "sys"):
            continue
        path = resolve_in_root(rootfs, destination)
        chain = []
        while path != rootfs and not os.path.lexists(path):
            chain.append(path)
            path = path.parent
        missing.extend(p for p in reversed(chain) if p not in missing)
    return missing


def _remove_stubs(stubs: list[Path]) -> None:
    """Remove what runc created for mount targets, as BuildKit's MountStubsCleaner does:
    exactly those paths, deepest first, and only while still an empty file or directory,
    so nothing the step itself wrote is ever removed."""
    for stub in sorted(stubs, key=lambda p: len(p.parts), reverse=True):
        with contextlib.suppress(OSError):
            st = os.lstat(stub)
            if stat.S_ISDIR(st.st_mode):
                stub.rmdir()  # fails (and is kept) unless empty
            elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
                stub.unlink()


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
        bundle.mkdir(parents=True)
        try:
            user = resolve_user_in_root(rootfs, process.user)
            plan = emulation.plan(process, rootfs)
            if plan.env:
                process = dataclasses.replace(process, env=(*process.env, *plan.env))
            etc_files = self._etc_files(bundle, process)
            spec = build_spec(
                rootfs.resolve(), process, user, args=list(plan.args), etc_files=etc_files
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
            (bundle / "config.json").write_text(json.dumps(spec))
            stubs = _missing_destinations(rootfs, [m["destination"] for m in spec["mounts"]])
            try:
                return self._run_bundle(
                    container_id, bundle, process.timeout, stdin, stdout, stderr
                )
            finally:
                _remove_stubs(stubs)
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
            (bundle / "resolv.conf").write_text(text)
            files["/etc/resolv.conf"] = bundle / "resolv.conf"
        return files

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
        try:
            return self._wait_bundle(container_id, bundle, timeout, stdin, stdout, stderr)
        finally:
            with self._active_lock:
                self._active.discard(container_id)

    def kill_all(self) -> None:
        """SIGKILL every container this executor is running (a failed build cancels the rest)."""
        with self._active_lock:
            active = list(self._active)
        for container_id in active:
            subprocess.run(
                self._runc("kill", container_id, "KILL"), capture_output=True, check=False
            )

    def _wait_bundle(
        self,
        container_id: str,
        bundle: Path,
        timeout: float | None,
        stdin: Stream,
        stdout: Stream,
        stderr: Stream,
    ) -> ExitStatus:
        argv = _with_parent_death_signal(self._runc("run", "--bundle", str(bundle), container_id))
        try:
            proc = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=stderr)
        except OSError as exc:
            raise ExecutionError(f"cannot start {self.runtime}: {exc.strerror}") from exc
        try:
            code = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            subprocess.run(
                self._runc("kill", container_id, "KILL"), capture_output=True, check=False
            )
            proc.wait()
            return ExitStatus(137, timed_out=True)
        except BaseException:
            # Interrupted (Ctrl-C, cancellation): stop the container before re-raising.
            subprocess.run(
                self._runc("kill", container_id, "KILL"), capture_output=True, check=False
            )
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            raise
        return ExitStatus(code if code >= 0 else 128 - code)

    def _remove(self, container_id: str, bundle: Path) -> None:
        subprocess.run(
            self._runc("delete", "--force", container_id), capture_output=True, check=False
        )
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
