"""`--push=true`, `--load=false`: boolean flags with a value, as pflag takes them.

buildx's boolean flags accept `--flag=VALUE` with any value Go's strconv.ParseBool reads
(`1`, `t`, `true`, `TRUE`, `0`, `f`, `false`...), and CI scripts write `--push=${PUSH}`.
click's flags take no value, so before click parses the command line each such word becomes
`--flag` (true), the flag's `--no-` form when it has one, or nothing (false). Only words that
are flags of the command they follow change: a flag's value (`--build-arg X=--push=true`)
and everything after `--` stay as written. Other values are left for click, whose error
flag_errors words as pflag does.
"""

from __future__ import annotations

from collections.abc import Sequence

import click

_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def _options(command: click.Command) -> tuple[set[str], dict[str, click.Option]]:
    """The option names that take a value, and the boolean flags by their `--` names."""
    takes_value: set[str] = set()
    flags: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        if param.is_flag and not param.count:
            flags.update({name: param for name in param.opts if name.startswith("--")})
        elif not param.is_flag and not param.count:
            takes_value.update(param.opts)
    return takes_value, flags


def normalize(argv: Sequence[str], root: click.Command) -> list[str]:
    """`argv` with each `--flag=BOOL` of a boolean flag in click's form."""
    ctx = click.Context(root, info_name="polybuild")
    command: click.Command = root
    takes_value, flags = _options(command)
    out: list[str] = []
    words = iter(argv)
    for word in words:
        if word == "--":
            out += [word, *words]
            break
        name, sep, value = word.partition("=")
        if sep and name in flags and (value in _TRUE or value in _FALSE):
            option = flags[name]
            if value in _TRUE:
                out.append(name)
            elif option.secondary_opts:
                out.append(option.secondary_opts[0])
            continue  # false without a --no- form: the flag's default
        out.append(word)
        if word in takes_value:
            given = next(words, None)  # the option's value, as written
            if given is not None:
                out.append(given)
            continue
        if not word.startswith("-") and isinstance(command, click.Group):
            sub = command.get_command(ctx, word)
            if sub is not None:
                ctx = click.Context(sub, info_name=word, parent=ctx)
                command = sub
                takes_value, flags = _options(command)
    return out


__all__ = ["normalize"]
