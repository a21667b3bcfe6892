"""Which platforms this host can run: execute a tiny program per architecture in a chroot.

This is BuildKit's method: a handler registered without the F flag names an interpreter
path that does not exist inside a container's root, so the probe runs in an empty chroot
and such a handler fails there. The failure is then explained by looking at binfmt_misc.
"""

from __future__ import annotations

import enum
import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from polybuild.binfmt import probe_cache
from polybuild.binfmt.elf import EXIT_CODE, TARGETS, exit_program
from polybuild.binfmt.handlers import BinfmtMisc, Handler
from polybuild.platforms import Platform, host_platform
from polybuild.scratch import scratch_dir

CACHE_SECONDS = 30.0
_PROBE_TIMEOUT = 20.0

# Display order after the native platform, as tonistiigi/binfmt prints it.
_ORDER = (
    "amd64",
    "arm64",
    "riscv64",
    "ppc64le",
    "s390x",
    "386",
    "mips64le",
    "mips64",
    "loong64",
    "arm",
)


class ProbeStatus(enum.Enum):
    NATIVE = "native"
    EMULATED = "emulated"
    NO_HANDLER = "no handler"
    NO_FIX_BINARY = "registered without the F flag"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What running the probe program of one architecture showed."""

    arch: str
    platforms: tuple[Platform, ...]
    status: ProbeStatus
    handler: Handler | None = None
    detail: str = ""

    @property
    def runnable(self) -> bool:
        return self.status in (ProbeStatus.NATIVE, ProbeStatus.EMULATED)


def _platforms_for(arch: str, native: Platform) -> tuple[Platform, ...]:
    if arch == "arm":
        return (Platform("linux", "arm", "v7"), Platform("linux", "arm", "v6"))
    if arch == "amd64" and native.architecture == "amd64" and native.variant:
        # A native x86-64 host also runs images built for the levels its CPU has.
        level = int(native.variant[1:])
        levels = (Platform("linux", "amd64", f"v{n}") for n in range(2, level + 1))
        return (Platform("linux", "amd64"), *levels)
    return (Platform("linux", arch),)


def _run_program(
    directory: Path, name: str, use_chroot: bool
) -> subprocess.CompletedProcess[bytes]:
    # chroot(8) rather than preexec_fn: probes may run from a build's worker threads.
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    argv = [chroot, str(directory), f"/{name}"] if use_chroot else [str(directory / name)]
    return subprocess.run(argv, capture_output=True, timeout=_PROBE_TIMEOUT, env={}, check=False)


def probe_arch(arch: str, workdir: Path, handlers: tuple[Handler, ...]) -> ProbeResult:
    """Run the exit program for `arch` (in a chroot when root) and classify the outcome."""
    native = host_platform()
    program = exit_program(arch)
    path = workdir / arch
    if not path.exists():  # probe_all writes every program before it runs any
        _write_program(path, program)
    platforms = _platforms_for(arch, native)
    matching = next((h for h in handlers if h.matches(program)), None)
    try:
        proc = _run_program(workdir, arch, use_chroot=os.geteuid() == 0)
        ran = proc.returncode == EXIT_CODE
        detail = proc.stderr.decode(errors="replace").strip()[:200]
    except OSError as exc:
        ran, detail = False, exc.strerror or str(exc)
    except subprocess.TimeoutExpired:
        ran, detail = False, "timed out"
    if ran:
        status = ProbeStatus.EMULATED if matching is not None else ProbeStatus.NATIVE
        return ProbeResult(arch, platforms, status, matching)
    if matching is None:
        return ProbeResult(arch, platforms, ProbeStatus.NO_HANDLER, None, detail)
    if not matching.fix_binary:
        return ProbeResult(arch, platforms, ProbeStatus.NO_FIX_BINARY, matching, detail)
    return ProbeResult(arch, platforms, ProbeStatus.FAILED, matching, detail)


def _write_program(path: Path, program: bytes) -> None:
    path.write_bytes(program)
    path.chmod(0o755)


def probe_all(binfmt: BinfmtMisc | None = None) -> tuple[ProbeResult, ...]:
    """Probe every architecture polybuild can assemble a program for, native first (the
    programs run at once: most of their time is QEMU starting)."""
    handlers = (binfmt or BinfmtMisc()).handlers()
    native_arch = host_platform().architecture
    order = [native_arch] + [a for a in _ORDER if a != native_arch and a in TARGETS]
    with scratch_dir("probe") as tmp:
        # Every program is written before any runs: a file open for writing while another
        # thread forks stays open in that child until it execs, and running the file then
        # fails with ETXTBSY.
        for arch in order:
            _write_program(tmp / arch, exit_program(arch))
        with ThreadPoolExecutor(len(order)) as pool:
            return tuple(pool.map(lambda arch: probe_arch(arch, tmp, handlers), order))


def _to_json(results: tuple[ProbeResult, ...]) -> list[dict[str, Any]]:
    return [
        {"arch": r.arch, "status": r.status.value, "detail": r.detail,
         "handler": r.handler.name if r.handler else ""}
        for r in results
    ]  # fmt: skip


def _from_json(items: list[dict[str, Any]]) -> tuple[ProbeResult, ...] | None:
    """Kept results with today's handlers (None when they no longer line up)."""
    handlers = {h.name: h for h in BinfmtMisc().handlers()}
    native = host_platform()
    results = []
    try:
        for item in items:
            handler = handlers.get(item["handler"]) if item["handler"] else None
            if item["handler"] and handler is None:
                return None
            arch = str(item["arch"])
            status = ProbeStatus(item["status"])
            results.append(
                ProbeResult(arch, _platforms_for(arch, native), status, handler, item["detail"])
            )
    except (KeyError, TypeError, ValueError):
        return None
    return tuple(results)


def _probe_remembered(refresh: bool) -> tuple[ProbeResult, ...]:
    if refresh:
        results = probe_all()
        probe_cache.store(probe_cache.fingerprint(), _to_json(results))
        return results
    found = _from_json(probe_cache.remembered(lambda: _to_json(probe_all())))
    return found if found is not None else probe_all()


_lock = threading.Lock()
_cache: dict[str, tuple[float, tuple[ProbeResult, ...]]] = {}


def cached_probe(*, refresh: bool = False) -> tuple[ProbeResult, ...]:
    """probe_all(), remembered for CACHE_SECONDS in this process so a build asks the kernel
    only once, and between processes while binfmt_misc stays as it was (probe_cache)."""
    with _lock:
        now = time.monotonic()
        hit = _cache.get("probe")
        if refresh or hit is None or now - hit[0] > CACHE_SECONDS:
            hit = _cache["probe"] = (now, _probe_remembered(refresh))
        return hit[1]


def runnable_platforms(*, refresh: bool = False) -> tuple[Platform, ...]:
    """The native platform(s) first, then every platform runnable through binfmt_misc."""
    result: list[Platform] = []
    for probe in cached_probe(refresh=refresh):
        if probe.runnable:
            result.extend(p for p in probe.platforms if p not in result)
    return tuple(result)
