"""`--call outline`: what a target can be given, as BuildKit's Dockerfile frontend answers
the `frontend.outline` subrequest (dockerfile2llb's outline capture): the build arguments the
target uses (name, value, the `# NAME description` comment above the ARG, where it is
declared), the secrets and ssh sockets its RUN steps mount, and the target's name and doc
comment. Rendering is in outline_render.py.

Which ARGs a stage "uses", as BuildKit counts them: every ARG the stage declares, and the
global ARGs its FROM line (name or --platform) expands, with the global ARGs their defaults
expand in turn. A target's outline gathers its own, then its base stage's (recursively),
then those of the stages it copies or mounts from; the first of a name wins, and each list
is sorted by line. Base images are not resolved: their ENV is unknown here, so an ARG
default that expands a base image's variable shows it empty (BuildKit would expand it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.flags import FlagError
from polybuild.dockerfile.lint.flow_rules import expand
from polybuild.dockerfile.mounts import parse_mount
from polybuild.dockerfile.stages import Dockerfile, Stage
from polybuild.dockerfile.syntax import Location, ParseResult
from polybuild.dockerfile.targets import doc_comment
from polybuild.errors import DockerfileError

# Args BuildKit reads itself and keeps out of the stage's environment.
_NON_ENV_ARGS = frozenset({"BUILDKIT_SBOM_SCAN_CONTEXT", "BUILDKIT_SBOM_SCAN_STAGE"})


@dataclass(frozen=True, slots=True)
class OutlineArg:
    name: str
    value: str  # the default as expanded, or the --build-arg value given
    description: str
    location: Location | None


@dataclass(frozen=True, slots=True)
class OutlineMount:
    """A secret or ssh socket a RUN step mounts (`required=true` or not)."""

    name: str
    required: bool
    location: Location


@dataclass(frozen=True, slots=True)
class Outline:
    name: str  # the target stage's name, "" for an unnamed stage
    description: str
    args: tuple[OutlineArg, ...]
    secrets: tuple[OutlineMount, ...]
    ssh: tuple[OutlineMount, ...]
    source: bytes  # the Dockerfile as read


@dataclass(frozen=True, slots=True)
class _ArgInfo:
    arg: OutlineArg
    deps: frozenset[str] = frozenset()  # global ARGs its default expanded


@dataclass(slots=True)
class _Capture:
    """One stage's outline capture (BuildKit's outlineCapture)."""

    all_args: dict[str, _ArgInfo]
    used: dict[str, None] = field(default_factory=dict)
    secrets: dict[str, OutlineMount] = field(default_factory=dict)
    ssh: dict[str, OutlineMount] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # ARG and ENV values, for expansion

    def clone(self) -> _Capture:
        return _Capture(dict(self.all_args), dict(self.used), dict(self.secrets),
                        dict(self.ssh), dict(self.env))  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Walk:
    df: Dockerfile
    comments: Mapping[int, tuple[str, ...]]  # an instruction's first line -> its comments
    build_args: Mapping[str, str]

    def describe(self, location: Location, name: str) -> str:
        return doc_comment(self.comments.get(location.start, ()), name)


def _global_scope(
    walk: _Walk, defaults: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, _ArgInfo]]:
    """buildMetaArgs: the global scope and every global ARG's outline entry."""
    scope = dict(defaults)
    infos: dict[str, _ArgInfo] = {}
    for command in walk.df.global_args:
        for definition in command.args:
            key, value, deps = definition.key, definition.default, frozenset[str]()
            if key in walk.build_args:
                value = walk.build_args[key]
            elif value is not None:
                value, recording = expand(value, scope, walk.df.escape_token)
                deps = frozenset(recording.matched)
                if key in deps:  # ARG X=$X:... keeps what the earlier X depended on
                    earlier = infos.get(key)
                    deps = (deps - {key}) | (earlier.deps if earlier else frozenset())
            if value is not None:
                scope[key] = value
            description = walk.describe(command.location, key)
            infos[key] = _ArgInfo(OutlineArg(key, value or "", description, command.location), deps)
    return scope, infos


def _from_matches(stage: Stage, scope: Mapping[str, str], escape: str) -> tuple[str, set[str]]:
    """The stage's base name with the global scope expanded, and the names that expanded."""
    base, recording = expand(stage.base, scope, escape)
    used = set(recording.matched)
    if stage.platform:
        _, recording = expand(stage.platform, scope, escape)
        used |= set(recording.matched)
    return base, used


def _dispatch(walk: _Walk, capture: _Capture, stage: Stage, scope: Mapping[str, str]) -> None:
    """What the stage's ARG, ENV and RUN instructions add to its capture."""
    escape = walk.df.escape_token
    for command in stage.commands:
        if isinstance(command, ins.Arg):
            for definition in command.args:
                key, value = definition.key, definition.default
                skip_info = False
                if value is None and key not in walk.build_args and key in scope:
                    value, skip_info = scope[key], True  # the global ARG brought into the stage
                if key in walk.build_args:
                    value = walk.build_args[key]
                elif definition.default is not None:
                    value, _ = expand(definition.default, capture.env, escape)
                if value is not None and key not in _NON_ENV_ARGS:
                    capture.env[key] = value
                if not skip_info:
                    description = walk.describe(command.location, key)
                    arg = OutlineArg(key, value or "", description, command.location)
                    capture.all_args[key] = _ArgInfo(arg)
                capture.used[key] = None
        elif isinstance(command, ins.Env):
            for pair in command.pairs:
                key, _ = expand(pair.key, capture.env, escape)
                capture.env[key], _ = expand(pair.value, capture.env, escape)
        elif isinstance(command, ins.Run):
            _mounts(capture, command, escape)


def _mounts(capture: _Capture, run: ins.Run, escape: str) -> None:
    for ssh_index, value in enumerate(run.mounts):
        try:
            spec = parse_mount(value, lambda word: expand(word, capture.env, escape)[0],
                               ssh_index=ssh_index)  # fmt: skip
        except FlagError:
            continue  # the build reports it; the outline lists what it can read
        if spec.type == "secret":
            name = spec.source or spec.id
            capture.secrets.setdefault(name, OutlineMount(name, spec.required, run.location))
        elif spec.type == "ssh":
            capture.ssh.setdefault(spec.id, OutlineMount(spec.id, spec.required, run.location))


def _sources(df: Dockerfile, stage: Stage) -> list[int]:
    """The stages this stage copies or mounts from (`COPY --from`, `RUN --mount=from=`)."""
    names: list[str] = []
    for command in stage.commands:
        if isinstance(command, ins.Copy) and command.from_:
            names.append(command.from_)
        elif isinstance(command, ins.Run):
            for value in command.mounts:
                try:
                    names.append(parse_mount(value).from_)
                except FlagError:
                    continue
    found: list[int] = []
    for name in filter(None, names):
        if name.isdigit():
            index = int(name)
            if index < len(df.stages):
                found.append(index)
        elif (other := df.stage_by_name(name)) is not None:
            found.append(other.index)
    return list(dict.fromkeys(found))


def _closure_args(captures: list[_Capture], order: list[int]) -> list[OutlineArg]:
    args: list[OutlineArg] = []
    visited: set[str] = set()
    for index in order:
        capture = captures[index]
        used = dict(capture.used)
        pending = list(used)
        while pending:  # markAllUsed: what the used global ARGs' defaults expanded
            info = capture.all_args.get(pending.pop())
            for dep in info.deps if info else ():
                if dep not in used:
                    used[dep] = None
                    pending.append(dep)
        for key in used:
            info = capture.all_args.get(key)
            if info is not None and key not in visited:
                visited.add(key)
                args.append(info.arg)
    return args


def _closure_mounts(mounts: list[dict[str, OutlineMount]]) -> list[OutlineMount]:
    found: dict[str, OutlineMount] = {}
    for of_stage in mounts:
        for name, mount in of_stage.items():
            found.setdefault(name, mount)
    return list(found.values())


def _line(item: OutlineArg | OutlineMount) -> int:
    return item.location.start if item.location else 0


def build_outline(
    parsed: ParseResult,
    df: Dockerfile,
    source: bytes,
    *,
    target: str,
    build_args: Mapping[str, str],
    default_args: Mapping[str, str],
) -> Outline:
    """The outline of `target` (default: the last stage); `default_args` are the automatic
    platform args (BUILDPLATFORM, TARGETPLATFORM...) of the global scope."""
    walk = _Walk(df, {node.location.start: node.comments for node in parsed.nodes}, build_args)
    chosen = df.stage_by_name(target) if target else df.stages[-1]
    if chosen is None:
        raise DockerfileError(f'target stage "{target}" could not be found', filename=df.filename)
    scope, global_infos = _global_scope(walk, default_args)
    captures: list[_Capture] = []
    bases: list[int | None] = []
    for stage in df.stages:
        base_name, used = _from_matches(stage, scope, df.escape_token)
        base = next((s for s in df.stages[: stage.index] if s.name and s.name == base_name), None)
        capture = captures[base.index].clone() if base else _Capture(dict(global_infos))
        capture.used.update(dict.fromkeys(sorted(used)))
        bases.append(base.index if base else None)
        captures.append(capture)
    for stage in df.stages:  # in file order: a base's environment is complete before its users
        base_index = bases[stage.index]
        if base_index is not None:
            captures[stage.index].env = dict(captures[base_index].env)
        _dispatch(walk, captures[stage.index], stage, scope)
    order: list[int] = []

    def visit(index: int) -> None:
        if index in order:
            return
        order.append(index)
        base = bases[index]
        if base is not None:
            visit(base)
        for other in _sources(df, df.stages[index]):
            visit(other)

    visit(chosen.index)
    return Outline(
        chosen.name,
        walk.describe(chosen.location, chosen.name),
        tuple(sorted(_closure_args(captures, order), key=_line)),
        tuple(sorted(_closure_mounts([captures[i].secrets for i in order]), key=_line)),
        tuple(sorted(_closure_mounts([captures[i].ssh for i in order]), key=_line)),
        source,
    )


__all__ = ["Outline", "OutlineArg", "OutlineMount", "build_outline"]
