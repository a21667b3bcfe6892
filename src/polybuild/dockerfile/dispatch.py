"""Apply one stage's instructions to its state: graph ops and image config, as BuildKit does."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.flags import FlagError
from polybuild.dockerfile.gofmt import go_duration, go_list, go_quoted_list
from polybuild.dockerfile.mounts import parse_mount
from polybuild.dockerfile.parser import parse_heredoc
from polybuild.dockerfile.shell import expand_heredoc, expand_word, expand_words
from polybuild.dockerfile.step_names import copy_name, run_name
from polybuild.dockerfile.syntax import Location
from polybuild.errors import DockerfileError
from polybuild.gitsource.url import parse_git_ref
from polybuild.graph import Copy, Exec, InlineFile, InlineSource, Merge, Mkdir, Mount, Op
from polybuild.graph.devices import parse_device_request
from polybuild.image.config import Healthcheck, History, ImageConfig, rfc3339
from polybuild.platforms import Platform

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Args BuildKit reads itself and keeps out of RUN environments.
NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})
_SIGNALS = frozenset((
    "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL",
    "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP",
    "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
))  # fmt: skip
_PORT = re.compile(r"^(?:(\d+)(?:-(\d+))?)(?:/(tcp|udp|sctp))?$", re.IGNORECASE)


@dataclass
class StageState:
    """The mutable walk state of one stage (BuildKit's dispatchState)."""

    root: Op | None
    platform: Platform
    config: ImageConfig
    env: dict[str, str]  # what RUN sees and words expand with: image env, ENV and ARG values
    workdir: str = "/"
    build_args: list[tuple[str, str | None]] = field(default_factory=list)
    cmd_set: bool = False


@dataclass(frozen=True, slots=True)
class Context:
    """What dispatch needs from the whole conversion."""

    filename: str
    escape: str
    global_args: dict[str, str]
    build_args: dict[str, str]
    context: Op
    source_for: Callable[[str, Location], Op | None]  # --from / from= -> the op to read
    epoch: int | None


def _error(
    message: str, location: Location, ctx: Context, hint: str | None = None
) -> DockerfileError:
    return DockerfileError(
        message, line=location.start, end_line=location.end, filename=ctx.filename, hint=hint
    )


def _expander(state: StageState, ctx: Context, location: Location) -> Callable[[str], str]:
    def expand(word: str) -> str:
        try:
            return expand_word(word, state.env, escape=ctx.escape)
        except ValueError as exc:
            raise _error(str(exc), location, ctx) from None

    return expand


def _history(
    state: StageState, text: str, layer: bool, ctx: Context, *, marked: bool = True
) -> None:
    """A history entry as BuildKit commits it: a step that makes its layer from an LLB
    state (RUN, COPY, ADD) is marked ` # buildkit`; WORKDIR's mkdir layer is not."""
    entry = History(
        created=rfc3339(ctx.epoch) if ctx.epoch is not None else None,  # else set on export
        created_by=text + " # buildkit" if layer and marked else text,
        comment="buildkit.dockerfile.v0",
        empty_layer=not layer,
    )
    state.config = replace(state.config, history=(*state.config.history, entry))


def _set(state: StageState, **changes: Any) -> None:
    """Change fields of the stage's container config (Env, Cmd, Labels...)."""
    state.config = replace(state.config, config=replace(state.config.config, **changes))


def _set_env(env: tuple[str, ...], key: str, value: str) -> tuple[str, ...]:
    items = list(env)
    for i, item in enumerate(items):
        if item.partition("=")[0] == key:
            items[i] = f"{key}={value}"
            return tuple(items)
    return (*items, f"{key}={value}")


def _with_shell(state: StageState, args: tuple[str, ...]) -> tuple[str, ...]:
    shell = state.config.config.shell or ("/bin/sh", "-c")
    return (*shell, " ".join(args))


def _abs_path(state: StageState, path: str) -> str:
    keep_slash = path.endswith("/") or path in (".", "")
    joined = posixpath.normpath(posixpath.join(state.workdir, path or "."))
    joined = "/" + joined.lstrip("/")
    return joined + "/" if keep_slash and joined != "/" else joined


def dispatch(state: StageState, command: ins.Command, ctx: Context) -> None:
    """Apply one instruction to `state`."""
    handler = _HANDLERS[type(command)]
    handler(state, command, ctx)


def _env(state: StageState, c: ins.Env, ctx: Context) -> None:
    expand = _expander(state, ctx, c.location)
    parts = []
    for pair in c.pairs:
        key, value = expand(pair.key), expand(pair.value)
        state.env[key] = value
        _set(state, env=_set_env(state.config.config.env, key, value))
        parts.append(f"{key}={value}")
    _history(state, "ENV " + " ".join(parts), False, ctx)


def _arg(state: StageState, c: ins.Arg, ctx: Context) -> None:
    parts = []
    for arg in c.args:
        value = arg.default
        if arg.key in ctx.build_args:
            value = ctx.build_args[arg.key]
        elif value is not None:
            value = _expander(state, ctx, c.location)(value)
        elif arg.key in ctx.global_args:
            value = ctx.global_args[arg.key]
        if value is not None and arg.key not in NON_ENV_ARGS:
            state.env[arg.key] = value
        state.build_args.append((arg.key, value))
        parts.append(arg.key if value is None else f"{arg.key}={value}")
    _history(state, "ARG " + " ".join(parts), False, ctx)


def _run_command_string(state: StageState, args: tuple[str, ...]) -> str:
    # BuildKit records the build args a RUN saw as `|N K=V ...` in front of the command.
    seen: dict[str, str] = {}
    for key, value in state.build_args:
        seen[key] = state.env.get(key, value or "")
    prefix = [f"|{len(seen)}", *(f"{k}={v}" for k, v in seen.items())] if seen else []
    return " ".join([*prefix, *args])


def _mounts(state: StageState, c: ins.Run, ctx: Context) -> tuple[Mount, ...]:
    expand = _expander(state, ctx, c.location)
    mounts: list[Mount] = []
    ssh_index = 0
    for raw in c.mounts:
        try:
            spec = parse_mount(raw, expand, ssh_index=ssh_index)
        except FlagError as exc:
            raise _error(exc.message, c.location, ctx, exc.hint) from None
        ssh_index += spec.type == "ssh"
        target = _abs_path(state, spec.target).rstrip("/") or "/" if spec.target else ""
        if target.split("/")[1:2] in (["dev"], ["proc"], ["sys"]) or target == "/":
            # runc before 1.2.8 can be tricked into masking or writing host paths through
            # mounts over its own /dev, /proc and /sys set-up (CVE-2025-31133, -52565).
            raise _error(
                f"--mount target={spec.target}: mounts on /, /dev, /proc or /sys are not allowed",
                c.location,
                ctx,
                "mount somewhere else, e.g. target=/mnt/...",
            )
        source: Op | None = None
        if spec.type == "bind":
            source = ctx.source_for(spec.from_, c.location) if spec.from_ else ctx.context
        elif spec.type == "cache" and spec.from_:
            source = ctx.source_for(spec.from_, c.location)
        mounts.append(
            Mount(
                type=spec.type,
                target=target,
                source=source,
                source_path=spec.source or "/",
                readonly=spec.readonly,
                cache_id=spec.id if spec.type == "cache" else "",
                sharing=spec.sharing if spec.type == "cache" else "",
                mode=spec.mode,
                uid=spec.uid,
                gid=spec.gid,
                required=spec.required,
                size=spec.size,
                secret_id=spec.id if spec.type in ("secret", "ssh") else "",
                env=spec.env,
            )
        )
    return tuple(mounts)


def _run(state: StageState, c: ins.Run, ctx: Context) -> None:
    args = c.cmd
    mounts = list(_mounts(state, c, ctx))
    if c.files:
        doc = parse_heredoc(args[0]) if len(args) == 1 else None
        first = c.files[0]
        data = first.content
        if first.chomp:
            from polybuild.dockerfile.parser import chomp_heredoc

            data = chomp_heredoc(data)
        if doc is not None and data.startswith("#!"):
            # a script with a shebang runs as a file, as BuildKit does via /dev/pipes
            script = InlineSource((InlineFile(first.name, data, 0o755),), state.platform)
            mounts.append(Mount("bind", "/dev/pipes/", script, "/", readonly=True))
            args = (posixpath.join("/dev/pipes/", first.name),)
        elif doc is not None:
            args = (data,)
        else:
            full = args[0]
            for f in c.files:
                full += "\n" + f.content + f.name
            args = (full,)
    if c.prepend_shell and not (c.files and args and args[0].startswith("/dev/pipes/")):
        args = _with_shell(state, args)
    state.root = Exec(
        rootfs=state.root,
        argv=args,
        env=tuple(f"{k}={v}" for k, v in state.env.items()),
        cwd=state.workdir,
        user=state.config.config.user,
        platform=state.platform,
        mounts=tuple(mounts),
        network=c.network,
        security=c.security,
        devices=tuple(parse_device_request(d) for d in c.devices),
        description=run_name(c, state.env, ctx.escape),
        location=(c.location.start, c.location.end),
    )
    _history(state, "RUN " + _run_command_string(state, args), True, ctx)


def _workdir(state: StageState, c: ins.Workdir, ctx: Context) -> None:
    path = _abs_path(state, _expander(state, ctx, c.location)(c.path)).rstrip("/") or "/"
    state.workdir = path
    _set(state, working_dir=path)
    if path != "/":
        state.root = Mkdir(
            state.root,
            path,
            state.platform,
            user=state.config.config.user,
            location=(c.location.start, c.location.end),
        )
    _history(state, f"WORKDIR {path}", path != "/", ctx, marked=False)


def _copy(state: StageState, c: ins.Copy, ctx: Context) -> None:
    expand = _expander(state, ctx, c.location)
    sources = tuple(expand(s) for s in c.sources)
    dest_word = expand(c.dest)
    name = "ADD" if c.is_add else "COPY"
    if len(sources) + len(c.contents) > 1 and not dest_word.endswith("/"):
        raise _error(
            f"When using {name} with more than one source file, "
            "the destination must be a directory and end with a /",
            c.location,
            ctx,
            hint=f"write the destination as {dest_word}/",
        )
    dest = _abs_path(state, dest_word)
    source: Op | None = ctx.source_for(c.from_, c.location) if c.from_ else ctx.context
    common = {
        "dest": dest,
        "platform": state.platform,
        "chmod": expand(c.chmod),
        "chown": expand(c.chown),
        "link": c.link,
        "parents": c.parents,
        "exclude": tuple(expand(e) for e in c.exclude),
        "is_add": c.is_add,
        "unpack": c.unpack,
        "checksum": expand(c.checksum),
        "keep_git_dir": bool(c.keep_git_dir),
        "description": copy_name(c, expand),
        "location": (c.location.start, c.location.end),
    }
    base: Op | None = None if c.link else state.root
    layers: list[Copy] = []
    local = [s for s in sources if not (c.is_add and _remote_source(s))]
    for url in (s for s in sources if s not in local):
        layers.append(Copy(base, None, (), url=url, **common))  # type: ignore[arg-type]
    if local:
        layers.append(Copy(base, source, tuple(local), **common))  # type: ignore[arg-type]
    if c.contents:
        files = tuple(
            InlineFile(d.path, expand_heredoc(d.data, state.env) if d.expand else d.data)
            for d in c.contents
        )
        inline = InlineSource(files, state.platform)
        names = tuple(f.path for f in files)
        layers.append(Copy(base, inline, names, **common))  # type: ignore[arg-type]
    if c.link:
        state.root = Merge((state.root, *layers), state.platform)
    else:
        for layer in layers:
            state.root = replace(layer, dest_base=state.root)
    _history(state, f"{name} " + " ".join((*sources, dest_word)), True, ctx)


def _remote_source(source: str) -> bool:
    """ADD fetches it: an HTTP(S) URL or a git reference (not the `github.com/...` form)."""
    if source.startswith(("http://", "https://")):
        return True
    if source.startswith("github.com/"):
        return False
    try:
        return parse_git_ref(source) is not None
    except ValueError:
        return True  # a malformed git reference: ADD's error says what is wrong


def _cmd(state: StageState, c: ins.Cmd, ctx: Context) -> None:
    args = _with_shell(state, c.cmd) if c.prepend_shell else c.cmd
    _set(state, cmd=args, args_escaped=True)  # BuildKit sets it with every CMD
    state.cmd_set = True
    _history(state, f"CMD {go_quoted_list(args)}", False, ctx)


def _entrypoint(state: StageState, c: ins.Entrypoint, ctx: Context) -> None:
    args = c.cmd
    if args is not None and c.prepend_shell:
        args = _with_shell(state, args)
    # An ENTRYPOINT resets a CMD inherited from the base, but not one set in this stage.
    cmd = state.config.config.cmd if state.cmd_set else ()
    _set(state, entrypoint=args or (), cmd=cmd)
    _history(state, f"ENTRYPOINT {go_quoted_list(args or ())}", False, ctx)


def _shell(state: StageState, c: ins.Shell, ctx: Context) -> None:
    _set(state, shell=c.shell)
    _history(state, f"SHELL {go_list(c.shell)}", False, ctx)


def _label(state: StageState, c: ins.Label, ctx: Context) -> None:
    expand = _expander(state, ctx, c.location)
    labels = dict(state.config.config.labels)
    parts = []
    for pair in c.pairs:
        key, value = expand(pair.key), expand(pair.value)
        labels[key] = value
        parts.append(f"{key}={value}")
    _set(state, labels=labels)
    _history(state, "LABEL " + " ".join(parts), False, ctx)


def _expose(state: StageState, c: ins.Expose, ctx: Context) -> None:
    ports = set(state.config.config.exposed_ports)
    for word in c.ports:
        try:
            specs = expand_words(word, state.env, escape=ctx.escape)
        except ValueError as exc:
            raise _error(str(exc), c.location, ctx) from None
        for spec in specs:
            match = _PORT.match(spec)
            if match is None:
                raise _error(
                    f"invalid containerPort: {spec}", c.location, ctx, hint="write 80 or 53/udp"
                )
            low = int(match.group(1))
            high = int(match.group(2) or low)
            if not 0 < low <= high <= 65535:
                raise _error(f"invalid containerPort: {spec}", c.location, ctx)
            proto = (match.group(3) or "tcp").lower()
            ports.update(f"{p}/{proto}" for p in range(low, high + 1))
    _set(state, exposed_ports=tuple(sorted(ports)))
    _history(state, f"EXPOSE {go_list(tuple(sorted(ports)))}", False, ctx)


def _volume(state: StageState, c: ins.Volume, ctx: Context) -> None:
    expand = _expander(state, ctx, c.location)
    volumes = [expand(v) for v in c.volumes]
    if any(not v for v in volumes):
        raise _error("VOLUME specified can not be an empty string", c.location, ctx)
    merged = tuple(sorted(set(state.config.config.volumes) | set(volumes)))
    _set(state, volumes=merged)
    _history(state, f"VOLUME {go_list(tuple(volumes))}", False, ctx)


def _user(state: StageState, c: ins.User, ctx: Context) -> None:
    user = _expander(state, ctx, c.location)(c.user)
    _set(state, user=user)
    _history(state, f"USER {user}", False, ctx)


def _healthcheck(state: StageState, c: ins.Healthcheck, ctx: Context) -> None:
    health = Healthcheck(c.test, c.interval, c.timeout, c.start_period, c.start_interval, c.retries)
    _set(state, healthcheck=health)
    fields = (
        f"Test:{go_list(c.test)} Interval:{go_duration(c.interval)} "
        f"Timeout:{go_duration(c.timeout)} StartPeriod:{go_duration(c.start_period)} "
        f"StartInterval:{go_duration(c.start_interval)} Retries:{c.retries}"
    )
    _history(state, f"HEALTHCHECK {{{fields}}}", False, ctx)


def _stopsignal(state: StageState, c: ins.StopSignal, ctx: Context) -> None:
    signal = _expander(state, ctx, c.location)(c.signal)
    name = signal.upper().removeprefix("SIG")
    if not (signal.isdigit() and int(signal) > 0) and name not in _SIGNALS:
        raise _error(f"Invalid signal: {signal}", c.location, ctx, hint="use e.g. SIGTERM or 15")
    _set(state, stop_signal=signal)
    _history(state, f"STOPSIGNAL {signal}", False, ctx)


def _onbuild(state: StageState, c: ins.Onbuild, ctx: Context) -> None:
    _set(state, on_build=(*state.config.config.on_build, c.expression))  # no history: BuildKit


def _maintainer(state: StageState, c: ins.Maintainer, ctx: Context) -> None:
    state.config = replace(state.config, author=c.maintainer)
    _history(state, f"MAINTAINER {c.maintainer}", False, ctx)


_HANDLERS: dict[type, Callable[[StageState, ins.Command, Context], None]] = {
    ins.Env: _env,  # type: ignore[dict-item]
    ins.Arg: _arg,  # type: ignore[dict-item]
    ins.Run: _run,  # type: ignore[dict-item]
    ins.Workdir: _workdir,  # type: ignore[dict-item]
    ins.Copy: _copy,  # type: ignore[dict-item]
    ins.Cmd: _cmd,  # type: ignore[dict-item]
    ins.Entrypoint: _entrypoint,  # type: ignore[dict-item]
    ins.Shell: _shell,  # type: ignore[dict-item]
    ins.Label: _label,  # type: ignore[dict-item]
    ins.Expose: _expose,  # type: ignore[dict-item]
    ins.Volume: _volume,  # type: ignore[dict-item]
    ins.User: _user,  # type: ignore[dict-item]
    ins.Healthcheck: _healthcheck,  # type: ignore[dict-item]
    ins.StopSignal: _stopsignal,  # type: ignore[dict-item]
    ins.Onbuild: _onbuild,  # type: ignore[dict-item]
    ins.Maintainer: _maintainer,  # type: ignore[dict-item]
}
