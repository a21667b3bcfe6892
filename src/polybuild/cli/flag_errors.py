"""Flag errors in buildx's words: what click reports as an unknown option, an option without
its value or a value of the wrong kind, printed as pflag words it and as the docker CLI's
FlagErrorFunc (which buildx uses) wraps it, with polybuild's name for `docker buildx`:

    unknown flag: --nope

    Usage:  polybuild build [OPTIONS] CONTEXT

    Run 'polybuild build --help' for more information

buildx exits with status 125 for these (cli/exit_codes.FLAG_ERROR)."""

from __future__ import annotations

from collections.abc import Sequence

import click

# pflag's words for the values Go's strconv parses, by click's type name.
_STRCONV = {"integer": "ParseInt", "float": "ParseFloat", "boolean": "ParseBool"}
_GO_BOOLS = frozenset(
    {"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"}
)


def _shorthand_word(option: str, argv: Sequence[str]) -> str:
    """`'z' in -qz`: pflag names the letter and the argument it was part of."""
    letter = option[1:]
    word = next(
        (a for a in argv if a.startswith("-") and not a.startswith("--") and letter in a[1:]),
        option,
    )
    return f"'{letter}' in {word}"


def _given_value(option: click.Option, argv: Sequence[str]) -> str:
    """The last value the command line gave `option` (`--name VALUE`, `--name=VALUE`, `-nVALUE`)."""
    value = ""
    for i, arg in enumerate(argv):
        for name in option.opts + option.secondary_opts:
            if arg == name and i + 1 < len(argv):
                value = argv[i + 1]
            elif name.startswith("--") and arg.startswith(name + "="):
                value = arg[len(name) + 1 :]
            elif not name.startswith("--") and arg.startswith(name) and len(arg) > len(name):
                value = arg[len(name) :]
    return value


def _flag_names(option: click.Option) -> str:
    """`-j, --jobs` as pflag names a flag with a shorthand, else `--jobs`."""
    short = next((o for o in option.opts if not o.startswith("--")), None)
    long_ = next((o for o in option.opts if o.startswith("--")), option.opts[0])
    return f"{short}, {long_}" if short else long_


def _invalid_value(exc: click.BadParameter, option: click.Option, argv: Sequence[str]) -> str:
    value = _given_value(option, argv)
    function = _STRCONV.get(option.type.name)
    if function is not None:
        reason = f'strconv.{function}: parsing "{value}": invalid syntax'
    else:
        reason = exc.message.rstrip(".")
    return f'invalid argument "{value}" for "{_flag_names(option)}" flag: {reason}'


def pflag_message(exc: click.ClickException, argv: Sequence[str]) -> str | None:
    """pflag's one-line error for a flag error, or None for any other click error."""
    if isinstance(exc, click.NoSuchOption):
        name = exc.option_name
        if name.startswith("--"):
            return f"unknown flag: {name.partition('=')[0]}"
        return f"unknown shorthand flag: {_shorthand_word(name, argv)}"
    if isinstance(exc, click.BadOptionUsage):
        name = exc.option_name
        if "requires an argument" in exc.message:
            where = name if name.startswith("--") else _shorthand_word(name, argv)
            return f"flag needs an argument: {where}"
        if "does not take a value" in exc.message:  # --flag=VALUE: pflag parses VALUE
            value = next((a.partition("=")[2] for a in argv if a.startswith(name + "=")), "")
            if value in _GO_BOOLS:
                return None  # valid for pflag; click's own words say what polybuild refuses
            return (
                f'invalid argument "{value}" for "{name}" flag: '
                f'strconv.ParseBool: parsing "{value}": invalid syntax'
            )
        return None
    if isinstance(exc, click.BadParameter) and isinstance(exc.param, click.Option):
        return _invalid_value(exc, exc.param, argv)
    return None


def usage_line(ctx: click.Context) -> str:
    """cobra's UseLine: the command's path, then its usage pieces."""
    return " ".join([ctx.command_path, *ctx.command.collect_usage_pieces(ctx)])


def _context_of(root: click.Command, argv: Sequence[str], prog: str) -> click.Context:
    """The context of the (sub)command argv runs, without parsing its flags (click's parser
    raises some errors before it gives them a context)."""
    ctx = click.Context(root, info_name=prog)
    takes_value = {o for p in root.params if isinstance(p, click.Option) and not p.is_flag
                   for o in p.opts}  # fmt: skip
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in takes_value:
            skip = True
        elif not arg.startswith("-") and isinstance(ctx.command, click.Group):
            command = ctx.command.get_command(ctx, arg)
            if command is None:
                break
            ctx = click.Context(command, info_name=arg, parent=ctx)
            takes_value = {o for p in command.params if isinstance(p, click.Option)
                           and not p.is_flag for o in p.opts}  # fmt: skip
        elif not arg.startswith("-"):
            break
    return ctx


def flag_error_text(
    exc: click.ClickException, argv: Sequence[str], root: click.Command, prog: str
) -> str | None:
    """The whole report buildx prints for a flag error (no final newline), or None when
    `exc` is not one. `root` and `prog` name the command line's root command."""
    message = pflag_message(exc, argv)
    if message is None:
        return None
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    ctx = ctx or _context_of(root, argv, prog)
    return (
        f"{message}\n\nUsage:  {usage_line(ctx)}\n\n"
        f"Run '{ctx.command_path} --help' for more information"
    )


__all__ = ["flag_error_text", "pflag_message", "usage_line"]
