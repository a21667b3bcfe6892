"""binfmt_misc: the QEMU emulators polybuild knows, and reading/registering kernel handlers."""

from __future__ import annotations

import errno
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from polybuild import syscalls
from polybuild.errors import EmulationError, PrivilegeError
from polybuild.platforms import Platform

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
QEMU_BINFMT_DIR = Path("/usr/libexec/qemu-binfmt")  # Debian's argv0-preserving wrappers


def _hex(text: str) -> bytes:
    return bytes.fromhex(text.replace(" ", ""))


@dataclass(frozen=True, slots=True)
class Emulator:
    """A QEMU user-mode emulator and the ELF header pattern that selects it."""

    arch: str  # GOARCH-style name, as `--install` takes it
    qemu: str  # QEMU's target name: qemu-<qemu>-static
    platforms: tuple[Platform, ...]
    magic: bytes
    mask: bytes

    @property
    def name(self) -> str:
        """The handler name in binfmt_misc, as tonistiigi/binfmt names it."""
        return f"qemu-{self.qemu}"

    def matches(self, header: bytes) -> bool:
        return _masked_equal(header, 0, self.magic, self.mask)


def _linux(arch: str, variant: str = "") -> Platform:
    return Platform("linux", arch, variant)


# Magic and mask are those of QEMU's scripts/qemu-binfmt-conf.sh (Debian ships the same in
# /usr/lib/binfmt.d); a test checks them against Debian's files where those are installed.
EMULATORS: tuple[Emulator, ...] = (
    Emulator(
        "amd64",
        "x86_64",
        (_linux("amd64"),),
        _hex("7f454c46 020101 00 0000000000000000 0200 3e00"),
        _hex("ffffffff fffefe 00 ffffffffffffffff feff ffff"),
    ),
    Emulator(
        "arm64",
        "aarch64",
        (_linux("arm64"),),
        _hex("7f454c46 020101 00 0000000000000000 0200 b700"),
        _hex("ffffffff ffffff 00 ffffffffffffffff feff ffff"),
    ),
    Emulator(
        "riscv64",
        "riscv64",
        (_linux("riscv64"),),
        _hex("7f454c46 020101 00 0000000000000000 0200 f300"),
        _hex("ffffffff ffffff 00 ffffffffffffffff feff ffff"),
    ),
    Emulator(
        "ppc64le",
        "ppc64le",
        (_linux("ppc64le"),),
        _hex("7f454c46 020101 00 0000000000000000 0200 1500"),
        _hex("ffffffff ffffff fc ffffffffffffffff feff ff00"),
    ),
    Emulator(
        "s390x",
        "s390x",
        (_linux("s390x"),),
        _hex("7f454c46 020201 00 0000000000000000 0002 0016"),
        _hex("ffffffff ffffff fc ffffffffffffffff fffe ffff"),
    ),
    Emulator(
        "386",
        "i386",
        (_linux("386"),),
        _hex("7f454c46 010101 00 0000000000000000 0200 0300"),
        _hex("ffffffff fffefe 00 ffffffffffffffff feff ffff"),
    ),
    Emulator(
        "mips64le",
        "mips64el",
        (_linux("mips64le"),),
        _hex("7f454c46 020101 00 0000000000000000 0200 0800"),
        _hex("ffffffff ffffff 00 feffffffffffffff feff ffff"),
    ),
    Emulator(
        "mips64",
        "mips64",
        (_linux("mips64"),),
        _hex("7f454c46 020201 00 0000000000000000 0002 0008"),
        _hex("ffffffff ffffff 00 feffffffffffffff fffe ffff"),
    ),
    Emulator(
        "loong64",
        "loongarch64",
        (_linux("loong64"),),
        _hex("7f454c46 020101 00 0000000000000000 0200 0201"),
        _hex("ffffffff ffffff fc 00ffffffffffffff feff ffff"),
    ),
    Emulator(
        "arm",
        "arm",
        (_linux("arm", "v7"), _linux("arm", "v6")),
        _hex("7f454c46 010101 00 0000000000000000 0200 2800"),
        _hex("ffffffff ffffff 00 ffffffffffffffff feff ffff"),
    ),
)
EMULATOR_BY_ARCH = {e.arch: e for e in EMULATORS}

# Names users may give to --install besides the GOARCH ones (tonistiigi/binfmt's aliases).
ARCH_ALIASES = {
    "aarch64": "arm64",
    "x86_64": "amd64",
    "i386": "386",
    "armhf": "arm",
    "armv7": "arm",
    "armv6": "arm",
    "ppc64el": "ppc64le",
    "mips64el": "mips64le",
    "loongarch64": "loong64",
}


def _masked_equal(data: bytes, offset: int, magic: bytes, mask: bytes) -> bool:
    chunk = data[offset : offset + len(magic)]
    if len(chunk) < len(magic):
        return False
    mask = mask or b"\xff" * len(magic)
    return all((c & m) == (g & m) for c, m, g in zip(chunk, mask, magic, strict=True))


@dataclass(frozen=True, slots=True)
class Handler:
    """A handler registered in binfmt_misc, as the kernel reports it."""

    name: str
    enabled: bool
    interpreter: str
    flags: str
    offset: int
    magic: bytes
    mask: bytes

    @property
    def fix_binary(self) -> bool:
        """The F flag: the kernel opened the interpreter at registration, so chroots work."""
        return "F" in self.flags

    def matches(self, header: bytes) -> bool:
        return (
            self.enabled
            and bool(self.magic)
            and _masked_equal(header, self.offset, self.magic, self.mask)
        )


def parse_handler(name: str, text: str) -> Handler:
    """Parse the text of /proc/sys/fs/binfmt_misc/<name>."""
    enabled, interpreter, flags, offset, magic, mask = False, "", "", 0, b"", b""
    for line in text.splitlines():
        key, _, value = line.strip().partition(" ")
        if key == "enabled":
            enabled = True
        elif key == "interpreter":
            interpreter = value.strip()
        elif key == "flags:":
            flags = value.strip()
        elif key == "offset":
            offset = int(value.strip() or 0)
        elif key == "magic":
            magic = bytes.fromhex(value.strip())
        elif key == "mask":
            mask = bytes.fromhex(value.strip())
    return Handler(name, enabled, interpreter, flags, offset, magic, mask)


class BinfmtMisc:
    """The binfmt_misc file system: list, register and remove handlers."""

    def __init__(self, root: Path = BINFMT_MISC) -> None:
        self.root = root

    def is_mounted(self) -> bool:
        return (self.root / "register").exists()

    def ensure_mounted(self) -> None:
        """Mount binfmt_misc at its usual place if it is not mounted (needs root)."""
        if self.is_mounted():
            return
        if os.geteuid() != 0:
            raise PrivilegeError(
                f"binfmt_misc is not mounted at {self.root}, and mounting it needs root",
                hint=f"run as root, or mount it: mount -t binfmt_misc binfmt_misc {self.root}",
            )
        try:
            syscalls.mount("binfmt_misc", self.root, "binfmt_misc")
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise EmulationError(
                    "this kernel has no binfmt_misc support",
                    hint="load the module (modprobe binfmt_misc) or use a kernel built with "
                    "CONFIG_BINFMT_MISC",
                ) from exc
            raise EmulationError(
                f"cannot mount binfmt_misc at {self.root}: {exc.strerror}",
                hint="run as root on the host (not in an unprivileged container)",
            ) from exc

    def handlers(self) -> tuple[Handler, ...]:
        """Every registered handler (empty when binfmt_misc is not mounted)."""
        if not self.is_mounted():
            return ()
        found = []
        for entry in sorted(self.root.iterdir()):
            if entry.name in ("register", "status"):
                continue
            try:
                found.append(parse_handler(entry.name, entry.read_text()))
            except (OSError, ValueError):
                continue  # removed while we read, or not a handler file
        return tuple(found)

    def register(self, emulator: Emulator, interpreter: str, flags: str) -> None:
        """Register `emulator` with `interpreter`; flags should contain F for containers."""
        line = ":{}:M:0:{}:{}:{}:{}".format(
            emulator.name,
            "".join(f"\\x{b:02x}" for b in emulator.magic),
            "".join(f"\\x{b:02x}" for b in emulator.mask),
            interpreter,
            flags,
        )
        self._write(self.root / "register", line, f"register {emulator.name}")

    def unregister(self, name: str) -> None:
        self._write(self.root / name, "-1", f"remove {name}")

    def _write(self, path: Path, text: str, what: str) -> None:
        if os.geteuid() != 0:
            raise PrivilegeError(
                f"cannot {what}: changing binfmt_misc needs root",
                hint="run the command as root (sudo polybuild binfmt ...)",
            )
        try:
            with open(path, "w") as f:
                f.write(text)
        except OSError as exc:
            raise EmulationError(
                f"cannot {what} in {self.root}: {exc.strerror}",
                hint="check that binfmt_misc is writable here (not a read-only container)",
            ) from exc


def find_interpreter(emulator: Emulator) -> tuple[str, str] | None:
    """The installed static QEMU for `emulator` and the flags to register it with.

    Debian's argv0-preserving wrapper (…-binfmt-P) gets the P flag as well; a plain
    qemu-*-static does not understand P and gets OCF. None when QEMU is not installed.
    """
    wrapper = QEMU_BINFMT_DIR / f"{emulator.qemu}-binfmt-P"
    if wrapper.exists():
        return str(wrapper), "POCF"
    static = shutil.which(f"qemu-{emulator.qemu}-static")
    if static:
        return static, "OCF"
    return None


def resolve_arch_name(name: str) -> Emulator | None:
    """The emulator for an --install name: GOARCH (arm64), QEMU (aarch64) or handler name."""
    key = name.strip().lower().removeprefix("qemu-")
    key = ARCH_ALIASES.get(key, key)
    if key in EMULATOR_BY_ARCH:
        return EMULATOR_BY_ARCH[key]
    for emulator in EMULATORS:
        if emulator.qemu == key:
            return emulator
    return None
