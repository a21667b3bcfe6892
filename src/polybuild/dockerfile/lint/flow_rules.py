"""Rules that follow the build's variables from stage to stage: undefined ARGs and
variables, base names and platforms, WORKDIR, CMD/ENTRYPOINT/HEALTHCHECK, secrets in ARG/ENV,
EXPOSE and files the .dockerignore excludes (BuildKit's dispatch-time checks)."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field

from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.convert import normalize_reference
from polybuild.dockerfile.lint import rules as r
from polybuild.dockerfile.lint.collector import Collector, suggest
from polybuild.dockerfile.lint.syntax_rules import expose_port, legacy_key_value
from polybuild.dockerfile.shell import expand_heredoc, expand_word, expand_words
from polybuild.dockerfile.syntax import Location, Node
from polybuild.platforms import parse as parse_platform

_SECRET = re.compile(
    r"(?:_|^)(?:apikey|auth|credential|credentials|key|password|pword|passwd|secret|token)(?:_|$)",
    re.I,
)
_SECRET_ALLOWED = re.compile(r"(?:_|^)(?:public|file|version)(?:_|$)", re.I)
_USED_ONCE = ("cmd", "entrypoint", "healthcheck")


class Recording(Mapping[str, str]):
    """An environment that remembers which names were looked up and were not there."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.unmatched: dict[str, None] = {}
        self.matched: dict[str, None] = {}

    def _seen(self, key: str) -> None:
        (self.matched if key in self.env else self.unmatched)[key] = None

    def __getitem__(self, key: str) -> str:
        self._seen(key)
        return self.env[key]

    def get(self, key: str, default: object = None) -> object:  # type: ignore[override]
        self._seen(key)
        return self.env.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._seen(key)
        return key in self.env

    def __iter__(self) -> Iterator[str]:
        return iter(self.env)

    def __len__(self) -> int:
        return len(self.env)


def expand(word: str, env: Mapping[str, str], escape: str) -> tuple[str, Recording]:
    recording = Recording(env)
    try:
        value = expand_word(word, recording, escape=escape)
    except ValueError:
        value = ""
    return value, recording


@dataclass(slots=True)
class StageEnv:
    """What one stage defines as the lint follows it: its environment (ENV and ARG values),
    the ARGs it declared, whether it set a WORKDIR or SHELL, whether its base's environment
    is known."""

    env: dict[str, str]
    declared: set[str] = field(default_factory=set)
    workdir_set: bool = False
    shell_set: bool = False
    env_known: bool = True  # False: the base image's environment is unknown


@dataclass(frozen=True, slots=True)
class Scope:
    """The file-wide facts dispatch needs."""

    escape: str
    global_env: Mapping[str, str]  # automatic args and global ARGs with their values
    global_keys: tuple[str, ...]  # every name FROM may use
    build_args: Mapping[str, str]
    ignored: Callable[[str], bool] | None  # a context path the .dockerignore excludes


def from_line(node: Node, stage_name: str, scope: Scope, lint: Collector) -> None:
    """UndefinedArgInFrom, RedundantTargetPlatform and FromPlatformFlagConstDisallowed."""
    base = node.args[0] if node.args else ""
    _, recording = expand(base, scope.global_env, scope.escape)
    _undefined_in_from(recording, node, scope, lint)
    platform = next((f.split("=", 1)[1] for f in node.flags if f.startswith("--platform=")), "")
    if not platform:
        return
    value, recording = expand(platform, scope.global_env, scope.escape)
    _undefined_in_from(recording, node, scope, lint)
    matched, unmatched = list(recording.matched), list(recording.unmatched)
    redundant = matched == ["TARGETPLATFORM"] and not unmatched
    if redundant and value == scope.global_env.get("TARGETPLATFORM"):
        lint.warn(
            r.REDUNDANT_TARGET_PLATFORM,
            f"Setting platform to predefined {platform} in FROM is redundant as this is"
            " the default behavior",
            node.location,
            comments=node.comments,
        )
    if matched or unmatched:
        return
    try:
        parsed = parse_platform(value)
    except Exception:
        return
    if parsed.os in stage_name or parsed.architecture in stage_name:
        return
    lint.warn(
        r.FROM_PLATFORM_FLAG_CONST_DISALLOWED,
        f'FROM --platform flag should not use constant value "{value}"',
        node.location,
        comments=node.comments,
    )


def _undefined_in_from(recording: Recording, node: Node, scope: Scope, lint: Collector) -> None:
    for name in recording.unmatched:
        if name in scope.global_keys:
            continue
        hint = suggest(name, list(scope.global_keys))
        detail = f"FROM argument '{name}' is not declared"
        lint.warn(
            r.UNDEFINED_ARG_IN_FROM,
            detail + (f" (did you mean {hint}?)" if hint else ""),
            node.location,
            comments=node.comments,
        )


def default_base(node: Node, default_env: Mapping[str, str], escape: str, lint: Collector) -> None:
    """InvalidDefaultArgInFrom: the base name with only the ARGs' defaults."""
    base = node.args[0] if node.args else ""
    value, _ = expand(base, default_env, escape)
    try:
        normalize_reference(value)
    except ValueError:
        lint.warn(
            r.INVALID_DEFAULT_ARG_IN_FROM,
            f"Default value for ARG {base} results in empty or invalid base image name",
            node.location,
        )


def _report_unmatched(
    recording: Recording, state: StageEnv, node: Node, scope: Scope, lint: Collector
) -> None:
    if not state.env_known:
        return
    for name in recording.unmatched:
        if name in state.declared:
            continue
        hint = suggest(name, list(state.env))
        detail = f"Usage of undefined variable '${name}'"
        lint.warn(
            r.UNDEFINED_VAR,
            detail + (f" (did you mean ${hint}?)" if hint else ""),
            node.location,
            comments=node.comments,
        )


def _words(command: ins.Command) -> list[str]:
    """The words BuildKit expands in a command before it dispatches it."""
    if isinstance(command, ins.Env | ins.Label):
        return [word for pair in command.pairs for word in (pair.key, pair.value)]
    if isinstance(command, ins.Copy):
        return [*command.sources, command.dest, command.chown, command.chmod]
    if isinstance(command, ins.Workdir):
        return [command.path]
    if isinstance(command, ins.User):
        return [command.user]
    if isinstance(command, ins.Volume):
        return list(command.volumes)
    if isinstance(command, ins.StopSignal):
        return [command.signal]
    if isinstance(command, ins.Expose):
        return list(command.ports)
    return []


def dispatch(
    node: Node, command: ins.Command, state: StageEnv, used: dict[str, Location], scope: Scope,
    lint: Collector,
) -> None:  # fmt: skip
    """The warnings one command of a stage gives, and its effect on the stage's variables."""
    comments = node.comments
    for word in _words(command):
        if word:
            _, recording = expand(word, state.env, scope.escape)
            _report_unmatched(recording, state, node, scope, lint)
    if isinstance(command, ins.Copy):
        for content in command.contents:
            if content.expand:
                recording = Recording(state.env)
                with suppress(ValueError):  # bad syntax fails the build, not the lint
                    expand_heredoc(content.data, recording)
                _report_unmatched(recording, state, node, scope, lint)
    keyword = node.keyword
    if keyword in _USED_ONCE:
        if keyword in used:
            lint.warn(
                r.MULTIPLE_INSTRUCTIONS_DISALLOWED,
                f"Multiple {node.command} instructions should not be used in the same stage"
                " because only the last one will be used",
                used[keyword],
                comments=comments,
            )
        used[keyword] = node.location
    if isinstance(command, ins.Env):
        legacy_key_value(node, lint, comments)
        for pair in command.pairs:
            _secret("ENV", pair.key, node, lint)
            state.env[pair.key] = expand(pair.value, state.env, scope.escape)[0]
    elif isinstance(command, ins.Label):
        legacy_key_value(node, lint, comments)
    elif isinstance(command, ins.Cmd | ins.Entrypoint):
        if command.prepend_shell and not state.shell_set:
            lint.warn(
                r.JSON_ARGS_RECOMMENDED,
                f"JSON arguments recommended for {node.command} to prevent unintended"
                " behavior related to OS signals",
                node.location,
                comments=comments,
            )
    elif isinstance(command, ins.Shell):
        state.shell_set = True
    elif isinstance(command, ins.Arg):
        _arg(node, command, state, scope, lint)
    elif isinstance(command, ins.Workdir):
        path = expand(command.path, state.env, scope.escape)[0]
        if not state.workdir_set and not posixpath.isabs(path):
            lint.warn(
                r.WORKDIR_RELATIVE_PATH,
                f'Relative workdir "{command.path}" can have unexpected results if the base'
                " image changes",
                node.location,
                comments=comments,
            )
        state.workdir_set = True
    elif isinstance(command, ins.Expose):
        for port in sorted(command.ports):  # BuildKit sorts EXPOSE's words as it parses
            for raw in expand_words(port, state.env, escape=scope.escape):
                expose_port(raw, node.location, lint, comments)
    elif isinstance(command, ins.Copy):
        _copy_ignored(node, command, state, scope, lint)


def _secret(instruction: str, key: str, node: Node, lint: Collector) -> None:
    if _SECRET.search(key) and not _SECRET_ALLOWED.search(key):
        lint.warn(
            r.SECRETS_USED_IN_ARG_OR_ENV,
            f'Do not use ARG or ENV instructions for sensitive data ({instruction} "{key}")',
            node.location,
            comments=node.comments,
        )


def _arg(node: Node, command: ins.Arg, state: StageEnv, scope: Scope, lint: Collector) -> None:
    for definition in command.args:
        _secret("ARG", definition.key, node, lint)
        value: str | None
        if definition.key in scope.build_args:
            value = scope.build_args[definition.key]
        elif definition.default is not None:
            value, recording = expand(definition.default, state.env, scope.escape)
            _report_unmatched(recording, state, node, scope, lint)
        else:
            value = scope.global_env.get(definition.key)
        if value is not None:
            state.env[definition.key] = value
    state.declared.update(d.key for d in command.args)


def _copy_ignored(
    node: Node, command: ins.Copy, state: StageEnv, scope: Scope, lint: Collector
) -> None:
    if scope.ignored is None or command.from_ or command.contents:
        return
    verb = "Add" if command.is_add else "Copy"
    for source in command.sources:
        if "://" in source:
            continue
        path = expand(source, state.env, scope.escape)[0]
        clean = posixpath.normpath(path.lstrip("/")) if path.strip("/") else "."
        if scope.ignored(clean):
            lint.warn(
                r.COPY_IGNORED_FILE,
                f'Attempting to {verb} file "{clean}" that is excluded by .dockerignore',
                node.location,
                comments=node.comments,
            )
