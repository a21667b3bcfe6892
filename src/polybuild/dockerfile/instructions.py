"""Typed instructions: each parser Node becomes a frozen dataclass; FROM lines start stages.

Values keep their `$VAR` references: BuildKit expands them while walking a stage (convert.py),
because the environment depends on the ENV and ARG instructions before them.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from polybuild.dockerfile.commands import (
    INSTRUCTION_NAMES,
    NETWORK_MODES,
    SECURITY_MODES,
    Arg,
    ArgDef,
    Cmd,
    Command,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Instruction,
    KeyValue,
    Label,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    SourceContent,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from polybuild.dockerfile.flags import FlagError, FlagKind, Flags, parse_flags, suggest
from polybuild.dockerfile.mounts import parse_mount
from polybuild.dockerfile.parser import chomp_heredoc, parse_heredoc
from polybuild.dockerfile.syntax import Node
from polybuild.errors import DockerfileError, UsageError
from polybuild.graph.devices import parse_device_request

_S, _B, _L = FlagKind.STRING, FlagKind.BOOL, FlagKind.LIST
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_DURATION = re.compile(r"([0-9]*\.?[0-9]*)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9}
_UNIT_NS |= {"m": 60 * 10**9, "h": 3600 * 10**9}


class _Error(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def parse_instruction(node: Node, *, filename: str = "Dockerfile") -> Instruction:
    """The typed instruction for `node`; DockerfileError (with its lines) if it is invalid."""
    try:
        handler = _HANDLERS.get(node.keyword)
        if handler is None:
            guess = suggest(node.command.upper(), INSTRUCTION_NAMES)
            raise _Error(
                f'unknown instruction "{node.command}"'
                + (f" (did you mean {guess}?)" if guess else ""),
                hint="instructions are: " + ", ".join(INSTRUCTION_NAMES),
            )
        return handler(node)
    except (_Error, FlagError) as exc:
        raise DockerfileError(
            exc.message,
            line=node.location.start,
            end_line=node.location.end,
            filename=filename,
            hint=exc.hint,
        ) from None


def _flags(node: Node, spec: dict[str, FlagKind]) -> Flags:
    return parse_flags(node.command.upper(), node.flags, spec)


def _exactly_one(node: Node) -> str:
    if len(node.args) != 1:
        raise _Error(f"{node.command.upper()} requires exactly one argument")
    return node.args[0]


def _at_least_one(node: Node) -> None:
    if not node.args:
        raise _Error(f"{node.command.upper()} requires at least one argument")


def _kvps(node: Node) -> tuple[KeyValue, ...]:
    name = node.command.upper()
    _flags(node, {})
    if not node.args:
        raise _Error(f"{name} requires at least one argument")
    pairs = []
    for i in range(0, len(node.args) - 2, 3):
        if not node.args[i]:
            raise _Error(f"{name} names can not be blank")
        pairs.append(KeyValue(node.args[i], node.args[i + 1]))
    return tuple(pairs)


def _cmdline(node: Node) -> tuple[str, ...]:
    if node.json:
        return node.args
    return (" ".join(node.args),) if node.args else ()


def _from(node: Node) -> From:
    args = node.args
    name = ""
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _Error(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols",
                hint="stage names match [a-z][a-z0-9-_.]*",
            )
    elif len(args) != 1:
        raise _Error(
            "FROM requires either one or three arguments", hint="write FROM image [AS name]"
        )
    flags = _flags(node, {"platform": _S})
    return From(args[0], name, flags.get("platform"), node.location)


def _run(node: Node) -> Run:
    flags = _flags(node, {"mount": _L, "network": _S, "security": _S, "device": _L})
    mounts = flags.list("mount")
    for value in mounts:
        if "$" not in value:  # variables are only known during conversion
            parse_mount(value)
    network = flags.get("network", "default")
    if network not in NETWORK_MODES:
        raise _Error(f"unsupported network mode {network!r}", hint="use default, none or host")
    security = flags.get("security", "sandbox")
    if security not in SECURITY_MODES:
        raise _Error(f"unsupported security mode {security!r}", hint="use sandbox or insecure")
    devices = flags.list("device")
    for value in devices:
        try:
            parse_device_request(value)
        except UsageError as exc:
            raise _Error(exc.message) from None
    return Run(
        _cmdline(node),
        not node.json,
        node.heredocs,
        mounts,
        network,
        security,
        node.location,
        devices,
    )


def _cmd(node: Node) -> Cmd:
    _flags(node, {})
    return Cmd(_cmdline(node), not node.json, node.heredocs, node.location)


def _entrypoint(node: Node) -> Entrypoint:
    _flags(node, {})
    cmd = _cmdline(node)
    return Entrypoint(cmd or None, not node.json, node.heredocs, node.location)


def _shell(node: Node) -> Shell:
    _flags(node, {})
    if not node.args:
        raise _Error("SHELL requires at least one argument")
    if not node.json:
        raise _Error(
            "SHELL requires the arguments to be in JSON form", hint='write SHELL ["/bin/sh", "-c"]'
        )
    return Shell(node.args, node.location)


def _arg(node: Node) -> Arg:
    _flags(node, {})
    if not node.args:
        raise _Error("ARG requires at least one argument")
    defs = []
    for word in node.args:
        key, has_value, value = word.partition("=")
        if not key:
            raise _Error("ARG names can not be blank")
        defs.append(ArgDef(key, value if has_value else None))
    return Arg(tuple(defs), node.location)


def _expose(node: Node) -> Expose:
    _flags(node, {})
    _at_least_one(node)
    return Expose(node.args, node.location)


def _volume(node: Node) -> Volume:
    _flags(node, {})
    _at_least_one(node)
    for volume in node.args:
        if not volume.strip():
            raise _Error("VOLUME specified can not be an empty string")
    return Volume(node.args, node.location)


def _copy(node: Node) -> Copy:
    is_add = node.keyword == "add"
    spec = {"chown": _S, "chmod": _S, "link": _B, "exclude": _L}
    spec |= (
        {"keep-git-dir": _B, "checksum": _S, "unpack": _B}
        if is_add
        else {"from": _S, "parents": _B}
    )
    flags = _flags(node, spec)
    name = node.command.upper()
    if len(node.args) < 2:
        raise _Error(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined",
            hint=f"write {name} <src>... <dest>",
        )
    dest = node.args[-1]
    if parse_heredoc(dest) is not None:
        raise _Error(f"{name} cannot accept a heredoc as a destination")
    docs = {doc.name: doc for doc in node.heredocs}
    sources: list[str] = []
    contents: list[SourceContent] = []
    for src in node.args[:-1]:
        marker = parse_heredoc(src)
        if marker is None:
            sources.append(src)
            continue
        doc = docs.get(marker.name)
        data = doc.content if doc else ""
        if marker.chomp:
            data = chomp_heredoc(data)
        contents.append(SourceContent(marker.name, data, marker.expand))
    if is_add and flags.get("checksum") and any(not _is_url(s) for s in sources):
        raise _Error("checksum can't be specified for non-HTTP(S) sources")
    return Copy(
        sources=tuple(sources),
        contents=tuple(contents),
        dest=dest,
        from_=flags.get("from"),
        chown=flags.get("chown"),
        chmod=flags.get("chmod"),
        link=flags.flag("link"),
        parents=flags.flag("parents"),
        exclude=flags.list("exclude"),
        location=node.location,
        is_add=is_add,
        checksum=flags.get("checksum"),
        keep_git_dir=flags.optional_flag("keep-git-dir"),
        unpack=flags.optional_flag("unpack"),
    )


def _is_url(src: str) -> bool:
    return src.startswith(("http://", "https://", "git@")) or ".git" in src


def parse_duration(name: str, value: str) -> int:
    """Go's time.ParseDuration (nanoseconds), with Docker's 1ms minimum for non-zero values."""
    if not value:
        return 0
    text = value.lstrip("+")
    if text == "0":
        return 0
    total, pos = 0.0, 0
    for match in _DURATION.finditer(text):
        if match.start() != pos or match.group(1) in ("", "."):
            break
        total += float(match.group(1)) * _UNIT_NS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise _Error(f'time: invalid duration "{value}"', hint=f"write --{name}=30s or 1m30s")
    nanos = int(total)
    if 0 < nanos < 10**6:
        raise _Error(f'Interval "{name}" cannot be less than 1ms')
    return nanos


def _healthcheck(node: Node) -> Healthcheck:
    _at_least_one(node)
    kind, rest = node.args[0].upper(), node.args[1:]
    if kind == "NONE":
        if rest:
            raise _Error("HEALTHCHECK NONE takes no arguments")
        _flags(node, {})
        return Healthcheck(("NONE",), 0, 0, 0, 0, 0, node.location)
    names = ("interval", "timeout", "start-period", "start-interval", "retries")
    flags = _flags(node, dict.fromkeys(names, _S))
    if kind != "CMD":
        raise _Error(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    cmd = rest if node.json else ((" ".join(rest),) if rest else ())
    if not cmd:
        raise _Error("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *cmd) if node.json else ("CMD-SHELL", *cmd)
    retries = 0
    if flags.get("retries"):
        try:
            retries = int(flags.get("retries"), 10)
        except ValueError:
            raise _Error(f"invalid --retries value: {flags.get('retries')}") from None
        if retries < 0:
            raise _Error(f"--retries cannot be negative ({retries})")
    interval, timeout, start_period, start_interval = (
        parse_duration(n, flags.get(n)) for n in names[:4]
    )
    return Healthcheck(
        test, interval, timeout, start_period, start_interval, retries, node.location
    )


def _onbuild(node: Node) -> Onbuild:
    _flags(node, {})
    if node.child is None:
        raise _Error("ONBUILD requires at least one argument")
    trigger = node.child.command.upper()
    if trigger == "ONBUILD":
        raise _Error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _Error(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)
    for doc in node.heredocs:
        expression += "\n" + doc.content + doc.name
    return Onbuild(expression, node.location)


def _simple(kind: type[Workdir | User | StopSignal | Maintainer]) -> Callable[[Node], Instruction]:
    def build(node: Node) -> Instruction:
        _flags(node, {})
        return kind(_exactly_one(node), node.location)

    return build


_HANDLERS: dict[str, Callable[[Node], Instruction]] = {
    "from": _from,
    "run": _run,
    "cmd": _cmd,
    "entrypoint": _entrypoint,
    "shell": _shell,
    "env": lambda node: Env(_kvps(node), node.location),
    "arg": _arg,
    "label": lambda node: Label(_kvps(node), node.location),
    "expose": _expose,
    "volume": _volume,
    "workdir": _simple(Workdir),
    "user": _simple(User),
    "copy": _copy,
    "add": _copy,
    "healthcheck": _healthcheck,
    "stopsignal": _simple(StopSignal),
    "onbuild": _onbuild,
    "maintainer": _simple(Maintainer),
}

__all__ = [
    "INSTRUCTION_NAMES",
    "NETWORK_MODES",
    "SECURITY_MODES",
    "Arg",
    "ArgDef",
    "Cmd",
    "Command",
    "Copy",
    "Entrypoint",
    "Env",
    "Expose",
    "From",
    "Healthcheck",
    "Instruction",
    "KeyValue",
    "Label",
    "Maintainer",
    "Onbuild",
    "Run",
    "Shell",
    "SourceContent",
    "StopSignal",
    "User",
    "Volume",
    "Workdir",
    "parse_instruction",
]
