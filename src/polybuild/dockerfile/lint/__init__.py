"""BuildKit's Dockerfile lint checks (`build --call check`, and the warnings a build prints).

>>> from polybuild.dockerfile.lint import lint_dockerfile
>>> [w.short() for w in lint_dockerfile("from alpine AS base\\n").warnings]
["FromAsCasing: 'AS' and 'from' keywords' casing do not match (line 1)"]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from polybuild.dockerfile import instructions as ins
from polybuild.dockerfile.convert import default_args
from polybuild.dockerfile.dispatch import DEFAULT_PATH
from polybuild.dockerfile.ignore import IgnoreMatcher
from polybuild.dockerfile.lint.collector import Collector
from polybuild.dockerfile.lint.config import LintConfig, build_config, parse_check_options
from polybuild.dockerfile.lint.flow_rules import (
    Scope,
    StageEnv,
    default_base,
    dispatch,
    expand,
    from_line,
)
from polybuild.dockerfile.lint.report import (
    LintResults,
    LintWarning,
    render_build_warnings,
    render_check,
    render_error,
    to_json,
)
from polybuild.dockerfile.lint.rules import RULES, Rule
from polybuild.dockerfile.lint.syntax_rules import (
    command_casing,
    empty_continuations,
    parse_time,
    stage_names,
)
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.syntax import Node, ParseResult
from polybuild.errors import DockerfileError
from polybuild.platforms import Platform, default_platform

CHECK_ARG = "BUILDKIT_DOCKERFILE_CHECK"
ImageEnv = Callable[[str], Mapping[str, str] | None]


def _image_env(image_env: ImageEnv | None, base: str) -> Mapping[str, str] | None:
    return image_env(base) if image_env is not None and base else None


def _stages(tree: ParseResult) -> tuple[list[Node], list[list[Node]]]:
    """Global ARG nodes, then each stage's nodes (its FROM first)."""
    global_args: list[Node] = []
    stages: list[list[Node]] = []
    for node in tree.nodes:
        if node.keyword == "from":
            stages.append([node])
        elif stages:
            stages[-1].append(node)
        elif node.keyword == "arg":
            global_args.append(node)
    return global_args, stages


def _global_env(
    arg_nodes: list[Node], base: dict[str, str], build_args: Mapping[str, str] | None, escape: str
) -> tuple[dict[str, str], list[str]]:
    """The global scope (automatic args, then global ARGs: a build arg, else the default
    expanded, else unset) and every declared name; with build_args None, defaults only."""
    env = dict(base)
    keys = list(base)
    for node in arg_nodes:
        for definition in ins.parse_instruction(node).args:  # type: ignore[union-attr]
            keys.append(definition.key)
            if build_args is not None and definition.key in build_args:
                env[definition.key] = build_args[definition.key]
            elif definition.default is not None:
                env[definition.key] = expand(definition.default, env, escape)[0]
    return env, keys


def _ignored(patterns: tuple[str, ...]) -> IgnoreMatcher | None:
    if not patterns or any(p.startswith("!") for p in patterns):
        return None  # exclusions cannot be judged statically (BuildKit skips the rule too)
    return IgnoreMatcher(patterns)


def _excluded_or_parent(matcher: IgnoreMatcher, path: str) -> bool:
    parts = path.split("/")
    return any(matcher.excluded("/".join(parts[:i])) for i in range(len(parts), 0, -1))


def lint_dockerfile(
    source: str | bytes,
    *,
    filename: str = "Dockerfile",
    build_args: Mapping[str, str] | None = None,
    target: str = "",
    platform: Platform | None = None,
    ignore_patterns: tuple[str, ...] = (),
    all_stages: bool = True,
    image_env: ImageEnv | None = None,
) -> LintResults:
    """Run every rule over one Dockerfile. A file that cannot be parsed gives results whose
    `error` says why (as BuildKit's check reports a build error). `all_stages=False` lints
    only the stages a build of `target` dispatches. `image_env` gives a base image's
    environment (None: unknown); variables in stages on an image whose environment is
    unknown are not reported as undefined (the image may define them)."""
    text = source.decode("utf-8", "surrogateescape") if isinstance(source, bytes) else source
    args = dict(build_args or {})
    try:
        tree = parse(text, filename=filename)
        config = build_config(tree.directive("check"), args.get(CHECK_ARG), filename)
        lint = Collector(config)
        _run(tree, lint, args, target, platform, ignore_patterns, all_stages, image_env)
    except DockerfileError as exc:
        ranges = ((exc.line, exc.end_line),) if exc.line else ()
        return LintResults(filename, text, (), exc.message, ranges)
    return LintResults(filename, text, tuple(lint.warnings), fail=config.error)


def _run(
    tree: ParseResult,
    lint: Collector,
    build_args: dict[str, str],
    target: str,
    platform: Platform | None,
    ignore_patterns: tuple[str, ...],
    all_stages: bool,
    image_env: ImageEnv | None,
) -> None:
    empty_continuations(tree, lint)
    global_nodes, stages = _stages(tree)
    for node in tree.nodes:
        parse_time(node, lint)
    commands = [[ins.parse_instruction(n, filename=tree.filename) for n in s] for s in stages]
    if not stages:
        raise DockerfileError("dockerfile contains no stages to build", filename=tree.filename)
    froms = [stage[0] for stage in stages]
    stage_names(froms, lint)
    command_casing(stages, lint)
    names = [n.args[2].lower() if len(n.args) == 3 else "" for n in froms]
    host = platform or default_platform()
    automatic = default_args(host, default_platform(), target or names[-1] or "default")
    escape = tree.escape_token
    defaults, _ = _global_env(global_nodes, automatic, None, escape)
    for node in froms:
        default_base(node, defaults, escape, lint)
    env, keys = _global_env(global_nodes, automatic, build_args, escape)
    matcher = _ignored(ignore_patterns)
    scope = Scope(
        escape,
        env,
        tuple(keys),
        build_args,
        (lambda p: _excluded_or_parent(matcher, p)) if matcher is not None else None,
    )
    for node, name in zip(froms, names, strict=True):
        from_line(node, name, scope, lint)
    chosen = _reachable(froms, names, commands, target, escape, env) if not all_stages else None
    states: dict[str, StageEnv] = {}
    for index, stage in enumerate(stages):
        base = expand(froms[index].args[0] if froms[index].args else "", env, escape)[0].lower()
        parent = states.get(base)
        if parent is not None:
            state = StageEnv(
                dict(parent.env), set(), parent.workdir_set, parent.shell_set, parent.env_known
            )
        else:
            known = {"PATH": DEFAULT_PATH} if base == "scratch" else _image_env(image_env, base)
            state = StageEnv(dict(known or {"PATH": DEFAULT_PATH}), env_known=known is not None)
        if names[index]:
            states[names[index]] = state
        states[str(index)] = state
        if chosen is not None and index not in chosen:
            continue
        used: dict[str, object] = {}
        for node, command in zip(stage[1:], commands[index][1:], strict=True):
            dispatch(node, command, state, used, scope, lint)  # type: ignore[arg-type]


def _reachable(
    froms: list[Node],
    names: list[str],
    commands: list[list[ins.Instruction]],
    target: str,
    escape: str,
    env: Mapping[str, str],
) -> set[int]:
    """The stages a build of `target` (else the last) depends on."""
    index_of = {name: i for i, name in enumerate(names) if name}
    index_of.update({str(i): i for i in range(len(names))})
    start = index_of.get(target.lower(), len(names) - 1) if target else len(names) - 1
    seen: set[int] = set()
    todo = [start]
    while todo:
        i = todo.pop()
        if i in seen:
            continue
        seen.add(i)
        base = expand(froms[i].args[0] if froms[i].args else "", env, escape)[0].lower()
        deps = [base]
        deps += [c.from_.lower() for c in commands[i] if isinstance(c, ins.Copy) and c.from_]
        todo += [index_of[d] for d in deps if d in index_of and index_of[d] < i]
    return seen


def is_lint_rule(name: str) -> bool:
    return name in RULES


__all__ = [
    "CHECK_ARG",
    "RULES",
    "ImageEnv",
    "LintConfig",
    "LintResults",
    "LintWarning",
    "Rule",
    "is_lint_rule",
    "lint_dockerfile",
    "parse_check_options",
    "render_build_warnings",
    "render_check",
    "render_error",
    "to_json",
]
