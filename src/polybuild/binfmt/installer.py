"""Install and remove QEMU handlers in binfmt_misc, as tonistiigi/binfmt does."""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass

from polybuild.binfmt.handlers import (
    EMULATORS,
    BinfmtMisc,
    Emulator,
    find_interpreter,
    resolve_arch_name,
)
from polybuild.binfmt.probe import ProbeStatus, cached_probe, runnable_platforms
from polybuild.errors import EmulationError, PrivilegeError, UsageError
from polybuild.platforms import format_platform, host_platform


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one requested emulator."""

    arch: str
    name: str
    result: str  # "installed", "already registered", "native", "removed", ...

    def __str__(self) -> str:
        return f"{self.arch} ({self.name}): {self.result}"


def _requested(names: list[str]) -> list[Emulator]:
    emulators: list[Emulator] = []
    for raw in names:
        for name in filter(None, (n.strip() for n in raw.split(","))):
            if name == "all":
                emulators.extend(e for e in EMULATORS if e not in emulators)
                continue
            emulator = resolve_arch_name(name)
            if emulator is None:
                valid = ", ".join(e.arch for e in EMULATORS)
                raise UsageError(
                    f"--install: unknown emulator {name!r}",
                    hint=f"choose from: all, {valid}",
                )
            if emulator not in emulators:
                emulators.append(emulator)
    return emulators


def install(names: list[str], binfmt: BinfmtMisc | None = None) -> list[Outcome]:
    """Register F-flag handlers for the named architectures whose QEMU is installed.

    Architectures the host runs natively are skipped; a handler already matching the
    architecture (whatever its name) is left alone and reported.
    """
    binfmt = binfmt or BinfmtMisc()
    wanted = _requested(names)
    _require_root("--install")
    explicit = not any(n.strip() == "all" for raw in names for n in raw.split(","))
    binfmt.ensure_mounted()
    # What the kernel runs natively is a fact of the real binfmt_misc, whatever `binfmt` is.
    native = {p.arch for p in cached_probe() if p.status is ProbeStatus.NATIVE}
    outcomes: list[Outcome] = []
    missing: list[Emulator] = []
    for emulator in wanted:
        if emulator.arch in native or emulator.arch == host_platform().architecture:
            outcomes.append(Outcome(emulator.arch, emulator.name, "native, nothing to do"))
            continue
        program_header = _header_for(emulator)
        existing = next((h for h in binfmt.handlers() if h.matches(program_header)), None)
        if existing is not None:
            flags = existing.flags or "none"
            outcomes.append(
                Outcome(
                    emulator.arch, existing.name, f"already registered (flags {flags}), left alone"
                )
            )
            continue
        interpreter = find_interpreter(emulator)
        if interpreter is None:
            missing.append(emulator)
            outcomes.append(
                Outcome(
                    emulator.arch,
                    emulator.name,
                    f"skipped: qemu-{emulator.qemu}-static is not installed",
                )
            )
            continue
        binfmt.register(emulator, *interpreter)
        outcomes.append(Outcome(emulator.arch, emulator.name, f"installed ({interpreter[0]})"))
    if missing and (explicit or len(missing) == len(wanted)):
        raise EmulationError(
            "QEMU user-mode emulators are not installed for: " + ", ".join(e.arch for e in missing),
            hint="install them with: apt-get install qemu-user-static",
        )
    cached_probe(refresh=True)
    return outcomes


def _require_root(flag: str) -> None:
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"binfmt {flag} needs root: it changes the kernel's binfmt_misc handlers",
            hint="run it as root, for example: sudo polybuild binfmt " + flag + " ...",
        )


def _header_for(emulator: Emulator) -> bytes:
    from polybuild.binfmt.elf import TARGETS, exit_program

    return exit_program(emulator.arch) if emulator.arch in TARGETS else emulator.magic


def uninstall(names: list[str], binfmt: BinfmtMisc | None = None) -> list[Outcome]:
    """Remove handlers by name (`qemu-aarch64`, globs like `qemu-*`, or `all` for qemu-*)."""
    binfmt = binfmt or BinfmtMisc()
    _require_root("--uninstall")
    registered = {h.name: h for h in binfmt.handlers()}
    outcomes: list[Outcome] = []
    for raw in names:
        for given in filter(None, (n.strip() for n in raw.split(","))):
            pattern = "qemu-*" if given == "all" else given
            emulator = resolve_arch_name(pattern)
            if emulator is not None and pattern not in registered:
                pattern = emulator.name
            hits = sorted(n for n in registered if fnmatch.fnmatchcase(n, pattern))
            if not hits:
                outcomes.append(Outcome(pattern, pattern, "not registered"))
            for name in hits:
                binfmt.unregister(name)
                del registered[name]
                outcomes.append(Outcome(name.removeprefix("qemu-"), name, "removed"))
    cached_probe(refresh=True)
    return outcomes


def status(binfmt: BinfmtMisc | None = None) -> dict[str, list[str]]:
    """tonistiigi/binfmt's status document: supported platforms and registered emulators."""
    binfmt = binfmt or BinfmtMisc()
    return {
        "supported": [format_platform(p) for p in runnable_platforms(refresh=True)],
        "emulators": [h.name for h in binfmt.handlers()],
    }
