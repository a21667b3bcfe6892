"""How a process for a foreign platform runs: binfmt_misc (F flag) or a bind-mounted QEMU.

With an F-flag handler registered, the kernel runs foreign binaries by itself and nothing
changes. Without one, BuildKit's fallback applies: the static emulator is bind-mounted into
the container and put in front of the command (only that first program is emulated).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from polybuild.binfmt.handlers import EMULATOR_BY_ARCH, find_interpreter
from polybuild.binfmt.probe import runnable_platforms
from polybuild.errors import EmulationError
from polybuild.executor.process import DEFAULT_PATH, Mount, Process
from polybuild.platforms import format_platform
from polybuild.rootfs import lookup_path

EMULATOR_MOUNT = "/dev/.polybuild-qemu"


@dataclass(frozen=True, slots=True)
class EmulationPlan:
    """Extra mounts and the argv to run instead of the process's own."""

    args: tuple[str, ...]
    mounts: tuple[Mount, ...] = ()
    emulated: bool = False  # True when QEMU is involved, through binfmt_misc or the mount
    env: tuple[str, ...] = ()  # for QEMU itself (it reads QEMU_CPU from the environment)


# QEMU's default ARM CPU is an ARMv7 (or later) core; an arm/v6 or v5 image should run on
# the CPU it was built for, so `uname -m` says armv6l and v7-only instructions fault.
QEMU_CPU_FOR_VARIANT = {"v6": "arm1176", "v5": "arm926"}


def _qemu_env(process: Process) -> tuple[str, ...]:
    platform = process.platform
    if platform is None or platform.architecture != "arm" or process.env_value("QEMU_CPU"):
        return ()
    cpu = QEMU_CPU_FOR_VARIANT.get(platform.variant)
    return (f"QEMU_CPU={cpu}",) if cpu else ()


def plan(process: Process, rootfs: Path) -> EmulationPlan:
    """Decide how to run `process` (for `process.platform`) on this host."""
    platform = process.platform
    if platform is None:
        return EmulationPlan(process.args)
    runnable = runnable_platforms()
    if platform in runnable:
        native = runnable[0].architecture == platform.architecture or (
            platform.architecture == "386" and runnable[0].architecture == "amd64"
        )
        return EmulationPlan(
            process.args, emulated=not native, env=() if native else _qemu_env(process)
        )
    emulator = EMULATOR_BY_ARCH.get(platform.architecture)
    interpreter = find_interpreter(emulator) if emulator else None
    if emulator is None or interpreter is None:
        arch = emulator.arch if emulator else platform.architecture
        raise EmulationError(
            f"cannot run steps for {format_platform(platform)} on this host: no emulator",
            hint=f"polybuild binfmt --install {arch} (needs Debian's qemu-user-static)",
        )
    static = str(Path(interpreter[0]).resolve())
    program = lookup_path(rootfs, process.args[0], process.env_value("PATH") or DEFAULT_PATH)
    if program is None:
        raise EmulationError(
            f"{process.args[0]}: executable file not found in $PATH of the image",
            hint="use an absolute path for the command",
        )
    args = (EMULATOR_MOUNT, "-0", process.args[0], program, *process.args[1:])
    mount = Mount(EMULATOR_MOUNT, "bind", static, ("ro",))
    return EmulationPlan(args, (mount,), emulated=True, env=_qemu_env(process))
