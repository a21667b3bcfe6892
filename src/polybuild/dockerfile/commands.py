"""The typed Dockerfile instructions: one frozen dataclass per instruction, with its location."""

from __future__ import annotations

from dataclasses import dataclass

from polybuild.dockerfile.syntax import Heredoc, Location

NETWORK_MODES = ("default", "none", "host")
SECURITY_MODES = ("sandbox", "insecure")


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class ArgDef:
    """`NAME` or `NAME=default` from an ARG line (the default is expanded later)."""

    key: str
    default: str | None


@dataclass(frozen=True, slots=True)
class From:
    base: str
    stage_name: str
    platform: str
    location: Location


@dataclass(frozen=True, slots=True)
class Run:
    cmd: tuple[str, ...]
    prepend_shell: bool
    files: tuple[Heredoc, ...]
    mounts: tuple[str, ...]  # raw --mount values, expanded and parsed during conversion
    network: str
    security: str
    location: Location
    devices: tuple[str, ...] = ()  # raw --device values (CDI device requests)


@dataclass(frozen=True, slots=True)
class Cmd:
    cmd: tuple[str, ...]
    prepend_shell: bool
    files: tuple[Heredoc, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Entrypoint:
    cmd: tuple[str, ...] | None  # None: `ENTRYPOINT` with no arguments clears it
    prepend_shell: bool
    files: tuple[Heredoc, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Shell:
    shell: tuple[str, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Env:
    pairs: tuple[KeyValue, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Arg:
    args: tuple[ArgDef, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Label:
    pairs: tuple[KeyValue, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Expose:
    ports: tuple[str, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Volume:
    volumes: tuple[str, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Workdir:
    path: str
    location: Location


@dataclass(frozen=True, slots=True)
class User:
    user: str
    location: Location


@dataclass(frozen=True, slots=True)
class SourceContent:
    """A heredoc used as a COPY/ADD source: it becomes a file named `path`."""

    path: str
    data: str
    expand: bool


@dataclass(frozen=True, slots=True)
class Copy:
    """COPY, or ADD when `is_add`; ADD-only and COPY-only fields keep their defaults."""

    sources: tuple[str, ...]
    contents: tuple[SourceContent, ...]
    dest: str
    from_: str
    chown: str
    chmod: str
    link: bool
    parents: bool
    exclude: tuple[str, ...]
    location: Location
    is_add: bool = False
    checksum: str = ""
    keep_git_dir: bool | None = None
    unpack: bool | None = None


@dataclass(frozen=True, slots=True)
class Healthcheck:
    """HEALTHCHECK; `test` is ("NONE",), ("CMD", ...) or ("CMD-SHELL", cmd); durations in ns."""

    test: tuple[str, ...]
    interval: int
    timeout: int
    start_period: int
    start_interval: int
    retries: int
    location: Location


@dataclass(frozen=True, slots=True)
class StopSignal:
    signal: str
    location: Location


@dataclass(frozen=True, slots=True)
class Onbuild:
    expression: str  # the trigger as text, as stored in the image config's OnBuild
    location: Location


@dataclass(frozen=True, slots=True)
class Maintainer:
    maintainer: str
    location: Location


Command = (
    Run
    | Cmd
    | Entrypoint
    | Shell
    | Env
    | Arg
    | Label
    | Expose
    | Volume
    | Workdir
    | User
    | Copy
    | Healthcheck
    | StopSignal
    | Onbuild
    | Maintainer
)
Instruction = From | Command
INSTRUCTION_NAMES = (
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
)  # fmt: skip
