"""A Dockerfile as stages: global ARGs before the first FROM, then each FROM and its commands."""

from __future__ import annotations

import re
from dataclasses import dataclass

from polybuild.dockerfile.instructions import Arg, Command, From, parse_instruction
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.syntax import Location, ParseResult, Warning_
from polybuild.errors import DockerfileError

# `# syntax=` values that name the frontend we implement (any docker/dockerfile:1.x tag).
_OUR_SYNTAX = re.compile(
    r"^(?:docker\.io/)?docker/dockerfile(?::1(?:[.\-][0-9A-Za-z.\-]*)?)?(?:@sha256:[0-9a-f]{64})?$"
)


@dataclass(frozen=True, slots=True)
class Stage:
    """One build stage: `FROM base [AS name]` and the commands up to the next FROM."""

    index: int
    name: str  # lower-cased; "" for an unnamed stage
    base: str  # as written: may hold $VARs of the global scope, or name an earlier stage
    platform: str  # the raw --platform value, "" when absent
    location: Location
    commands: tuple[Command, ...]

    @property
    def display_name(self) -> str:
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True, slots=True)
class Dockerfile:
    """Typed stages plus what the parser learned about the file."""

    stages: tuple[Stage, ...]
    global_args: tuple[Arg, ...]
    escape_token: str
    syntax: str | None
    warnings: tuple[Warning_, ...]
    filename: str = "Dockerfile"

    def stage_by_name(self, name: str) -> Stage | None:
        lowered = name.lower()
        for stage in self.stages:
            if stage.name == lowered:
                return stage
        return None


def load(source: str | bytes, *, filename: str = "Dockerfile") -> Dockerfile:
    """Parse Dockerfile text into stages; every problem is a DockerfileError with a line."""
    return from_parse_result(parse(source, filename=filename))


def from_parse_result(result: ParseResult) -> Dockerfile:
    """Group parsed nodes into stages (BuildKit's instructions.Parse)."""
    filename = result.filename
    global_args: list[Arg] = []
    stages: list[Stage] = []
    current: From | None = None
    commands: list[Command] = []

    def close() -> None:
        if current is not None:
            stages.append(
                Stage(
                    len(stages),
                    current.stage_name,
                    current.base,
                    current.platform,
                    current.location,
                    tuple(commands),
                )
            )

    for node in result.nodes:
        instruction = parse_instruction(node, filename=filename)
        if isinstance(instruction, From):
            close()
            current, commands = instruction, []
        elif current is None:
            if isinstance(instruction, Arg):
                global_args.append(instruction)
                continue
            raise DockerfileError(
                "no build stage in current context",
                line=node.location.start,
                end_line=node.location.end,
                filename=filename,
                hint="only ARG may come before the first FROM",
            )
        else:
            commands.append(instruction)
    close()
    if not stages:
        raise DockerfileError(
            "dockerfile contains no stages to build",
            filename=filename,
            hint="add a FROM instruction",
        )
    warnings = list(result.warnings)
    syntax = result.directive("syntax")
    if syntax is not None and not _OUR_SYNTAX.match(syntax):
        warnings.append(
            Warning_(
                f"syntax {syntax!r} names another frontend, which polybuild does not support; "
                "using the built-in Dockerfile frontend",
                1,
            )
        )
    return Dockerfile(
        tuple(stages),
        tuple(global_args),
        result.escape_token,
        syntax,
        tuple(warnings),
        filename,
    )
