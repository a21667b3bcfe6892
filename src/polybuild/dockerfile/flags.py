"""Instruction flags (`--name[=value]`) with BuildKit's BFlags rules, and did-you-mean hints."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import Enum


class FlagKind(Enum):
    """How a flag takes its value."""

    STRING = "string"
    BOOL = "bool"
    LIST = "list"  # may be repeated: --mount, --exclude


class FlagError(Exception):
    """A flag problem; the instruction layer adds the location."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def suggest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The closest of `choices` to a mistyped `word`, if one is close enough."""
    matches = difflib.get_close_matches(word.lower(), [c.lower() for c in choices], 1, 0.6)
    if not matches:
        return None
    return next(c for c in choices if c.lower() == matches[0])


@dataclass(frozen=True, slots=True)
class Flags:
    """Parsed flag values: strings for STRING/BOOL kinds, tuples for LIST kinds."""

    values: tuple[tuple[str, str], ...]
    lists: tuple[tuple[str, tuple[str, ...]], ...]

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.values:
            if key == name:
                return value
        return default

    def has(self, name: str) -> bool:
        return any(key == name for key, _ in self.values) or any(
            key == name and items for key, items in self.lists
        )

    def flag(self, name: str) -> bool:
        return self.get(name, "false") == "true"

    def optional_flag(self, name: str) -> bool | None:
        value = self.get(name)
        return None if value == "" else value == "true"

    def list(self, name: str) -> tuple[str, ...]:
        for key, items in self.lists:
            if key == name:
                return items
        return ()

    def names(self) -> tuple[str, ...]:
        return tuple(key for key, _ in self.values) + tuple(key for key, v in self.lists if v)


def parse_flags(instruction: str, raw: tuple[str, ...], spec: dict[str, FlagKind]) -> Flags:
    """Check `raw` (`--name=value` words) against the flags `instruction` accepts."""
    values: dict[str, str] = {}
    lists: dict[str, list[str]] = {name: [] for name, kind in spec.items() if kind is FlagKind.LIST}
    for word in raw:
        if not word.startswith("--"):
            raise FlagError(f"arguments must begin with '--' for {instruction}: {word}")
        name, has_value, value = word[2:].partition("=")
        kind = spec.get(name)
        if kind is None:
            guess = suggest(name, list(spec))
            accepted = ", ".join("--" + n for n in sorted(spec)) or "none"
            hint = f"did you mean --{guess}? " if guess else ""
            raise FlagError(
                f"unknown flag --{name} for {instruction}",
                hint=f"{hint}{instruction} accepts: {accepted}",
            )
        if kind is FlagKind.LIST:
            if not has_value:
                raise FlagError(f"Missing a value on flag: {name}", hint=f"write --{name}=VALUE")
            lists[name].append(value)
            continue
        if name in values:
            raise FlagError(f"Duplicate flag specified: {name}")
        if kind is FlagKind.BOOL:
            if not has_value:
                value = "true"
            elif value.lower() in ("true", "false"):
                value = value.lower()
            else:
                raise FlagError(f"expecting boolean value for flag {name}, not: {value}")
        elif not has_value:
            raise FlagError(f"Missing a value on flag: {name}", hint=f"write --{name}=VALUE")
        values[name] = value
    return Flags(
        values=tuple(values.items()),
        lists=tuple((name, tuple(items)) for name, items in lists.items()),
    )
