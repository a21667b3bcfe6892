"""What to run in a container: the process, its mounts and its isolation, as plain values."""

from __future__ import annotations

from dataclasses import dataclass, field

from polybuild.executor.cdi import ContainerEdits
from polybuild.platforms import Platform

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, slots=True)
class Mount:
    """An extra mount: `bind` (source is a host path) or `tmpfs`; read-only via options."""

    destination: str
    type: str = "bind"
    source: str = ""
    options: tuple[str, ...] = ()

    @property
    def readonly(self) -> bool:
        return "ro" in self.options


@dataclass(frozen=True, slots=True)
class Process:
    """One container process: argv, environment, identity, network and extra mounts."""

    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: str = ""
    hostname: str = "polybuild"
    network: str = "private"  # "private" (own namespace + NAT), "host" or "none"
    security: str = "sandbox"  # "sandbox" (Docker's default capabilities) or "insecure"
    mounts: tuple[Mount, ...] = ()
    platform: Platform | None = None  # None: the host's own
    timeout: float | None = None
    extra_hosts: tuple[tuple[str, str], ...] = field(default=())
    ulimits: tuple[tuple[str, int, int], ...] = field(default=())  # (docker name, soft, hard)
    shm_size: int | None = None  # bytes of /dev/shm (None: 64 MiB)
    cdi: ContainerEdits | None = None  # RUN --device: what the granted CDI devices add

    def env_value(self, name: str) -> str | None:
        for item in reversed(self.env):
            key, sep, value = item.partition("=")
            if sep and key == name:
                return value
        return None


@dataclass(frozen=True, slots=True)
class ExitStatus:
    """How the container process ended."""

    code: int
    timed_out: bool = False

    @property
    def signal(self) -> int | None:
        """The signal that killed the process, from the shell convention 128+N."""
        return self.code - 128 if 128 < self.code < 160 else None

    @property
    def ok(self) -> bool:
        return self.code == 0 and not self.timed_out
