"""Rules that read the syntax tree alone: casing, stage names, MAINTAINER, empty
continuation lines, legacy key/value forms, EXPOSE formats and definition comments."""

from __future__ import annotations

from collections.abc import Sequence

from polybuild.dockerfile.lint import rules as r
from polybuild.dockerfile.lint.collector import Collector
from polybuild.dockerfile.syntax import Location, Node, ParseResult

_RESERVED_STAGE_NAMES = frozenset({"context", "scratch"})


def empty_continuations(tree: ParseResult, lint: Collector) -> None:
    for warning in tree.warnings:
        if warning.message.startswith("Empty continuation line"):
            lint.warn(
                r.NO_EMPTY_CONTINUATION,
                "Empty continuation line",
                Location(warning.line, warning.line),
            )


def parse_time(node: Node, lint: Collector) -> None:
    """The rules BuildKit runs while typing one instruction (instructions.Parse)."""
    keyword = node.keyword
    if keyword == "maintainer":
        lint.warn(
            r.MAINTAINER_DEPRECATED,
            "Maintainer instruction is deprecated in favor of using label",
            node.location,
            comments=node.comments,
        )
    elif keyword == "from":
        args = node.args
        if len(args) == 3 and args[2] != args[2].lower():
            lint.warn(
                r.STAGE_NAME_CASING,
                f"Stage name '{args[2]}' should be lowercase",
                node.location,
                comments=node.comments,
            )
        if not _from_as_casing_matches(node.command, args):
            lint.warn(
                r.FROM_AS_CASING,
                f"'{args[1]}' and '{node.command}' keywords' casing do not match",
                node.location,
                comments=node.comments,
            )
        if len(args) == 3:
            _definition_description(node, "FROM", [args[2].lower()], lint)
    elif keyword == "arg":
        keys = [word.split("=", 1)[0] for word in node.args]
        _definition_description(node, "ARG", keys, lint)


def _from_as_casing_matches(command: str, args: Sequence[str]) -> bool:
    if len(args) < 3:
        return True
    if command == command.lower():
        return args[1] == args[1].lower()
    if command == command.upper():
        return args[1] == args[1].upper()
    return True


def _definition_description(node: Node, instruction: str, keys: list[str], lint: Collector) -> None:
    if not node.comments or not keys:
        return
    words = node.comments[-1].split(" ")
    if not words or words[0] in keys:
        return
    example = keys[0] if instruction == "FROM" or len(keys) == 1 else "<arg_key>"
    lint.warn(
        r.INVALID_DEFINITION_DESCRIPTION,
        f"Comment for {instruction} should follow the format: `# {example} <description>`",
        node.location,
        comments=node.comments,
    )


def stage_names(froms: Sequence[Node], lint: Collector) -> None:
    seen: set[str] = set()
    for node in froms:
        if len(node.args) != 3:
            continue
        name = node.args[2].lower()
        if name in _RESERVED_STAGE_NAMES:
            lint.warn(
                r.RESERVED_STAGE_NAME,
                f'Stage name should not use the same name as reserved stage "{name}"',
                node.location,
            )
        if name in seen:
            lint.warn(
                r.DUPLICATE_STAGE_NAME,
                f'Duplicate stage name "{name}", stage names should be unique',
                node.location,
            )
        seen.add(name)


def _consistent(name: str) -> bool:
    return name in (name.lower(), name.upper())


def command_casing(stages: Sequence[Sequence[Node]], lint: Collector) -> None:
    """Each stage's FROM and commands against the casing most of them use."""
    lower = upper = 0
    for stage in stages:
        for node in stage:
            if _consistent(node.command):
                if node.command == node.command.lower():
                    lower += 1
                else:
                    upper += 1
    majority_lower = lower > upper
    for stage in stages:
        for node in stage:
            name = node.command
            casing = ""
            if majority_lower and name.lower() != name:
                casing = "lowercase"
            elif not majority_lower and name.upper() != name:
                casing = "uppercase"
            if casing:
                lint.warn(
                    r.CONSISTENT_INSTRUCTION_CASING,
                    f"Command '{name}' should match the case of the command majority ({casing})",
                    node.location,
                )


def legacy_key_value(node: Node, lint: Collector, comments: tuple[str, ...]) -> None:
    """ENV and LABEL written `KEY value` (the parser's triples carry an empty delimiter)."""
    triples = [node.args[i : i + 3] for i in range(0, len(node.args), 3)]
    for triple in triples:
        if len(triple) == 3 and triple[2] == "":
            lint.warn(
                r.LEGACY_KEY_VALUE_FORMAT,
                f'"{node.command} key=value" should be used instead of legacy'
                f' "{node.command} key value" format',
                node.location,
                comments=comments,
            )


def expose_port(raw: str, location: Location, lint: Collector, comments: tuple[str, ...]) -> None:
    parts = raw.split(":")
    ip = host = ""
    container = parts[-1]
    if len(parts) == 2:
        host = parts[0]
    elif len(parts) >= 3:
        ip, host = ":".join(parts[:-2]), parts[-2]
    _, _, proto = container.partition("/")
    if proto.lower() not in ("", "tcp", "udp", "sctp") or not container.partition("/")[0]:
        return  # an invalid port: the build fails on it
    if proto != proto.lower():
        lint.warn(
            r.EXPOSE_PROTO_CASING,
            f"Defined protocol '{raw}' in EXPOSE instruction should be lowercase",
            location,
            comments=comments,
        )
    if ip or host:
        lint.warn(
            r.EXPOSE_INVALID_FORMAT,
            "EXPOSE instruction should not define an IP address or host-port mapping,"
            f" found '{raw}'",
            location,
            comments=comments,
        )
