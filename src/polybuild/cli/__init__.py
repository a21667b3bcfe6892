"""The polybuild command: a click group whose subcommands are imported only when invoked."""

from __future__ import annotations

import atexit
import contextlib
import faulthandler
import importlib
import os
import signal
import sys
import threading
import traceback
from typing import Any

import click

from polybuild import __version__
from polybuild.cli import bool_flags
from polybuild.cli.exit_codes import FLAG_ERROR, USAGE, exit_code_for
from polybuild.cli.flag_errors import flag_error_text
from polybuild.errors import PolybuildError, StepFailedError

# name -> "module[:attribute]" under polybuild.cli (default attribute `command`); importing it
# is deferred so that `polybuild --help` never pays for rich, httpx or the frontend.
COMMANDS: dict[str, tuple[str, str]] = {
    "binfmt": ("binfmt", "Show, install and remove QEMU emulators (binfmt_misc)"),
    "prune": ("prune", "Remove build cache and unused layers"),
    "du": ("du", "Show the build cache of a builder's nodes"),
    "check": ("check", "Verify the data root (blobs, images, build cache); --repair fixes it"),
    "ls": ("builders:ls_command", "List builders and their nodes"),
    "create": ("builders:create_command", "Create a builder, or add a node with --append"),
    "use": ("builders:use_command", "Use a builder for the following builds"),
    "inspect": ("builders:inspect_command", "Show a builder's nodes and platforms"),
    "rm": ("builders:rm_command", "Remove builders"),
    "stop": ("builders:stop_command", "Stop a builder (nothing runs between builds: a no-op)"),
    "images": ("images", "List images in the local image store"),
    "rmi": ("rmi", "Remove images from the local image store"),
    "load": ("load", "Load images from an OCI layout tarball"),
    "save": ("save", "Save images to an OCI layout tarball"),
    "build": ("build", "Build images for many platforms from a Dockerfile"),
    "run": ("run", "Run a command in a new container of an image, on any platform"),
    "import": ("import_", "Import a root filesystem tarball as one platform of an image"),
    "pull": ("pull", "Pull an image (some or all of its platforms) from a registry"),
    "push": ("push", "Push an image from the local store to a registry"),
    "imagetools": ("imagetools", "Inspect images in registries and combine them into indexes"),
    "version": ("version", "Show polybuild's version"),
    "history": ("history", "Commands to work on build records (ls, inspect, logs, rm)"),
    "dial-stdio": ("dial_stdio", ""),  # hidden (no help): a client starts it on a node over ssh
}


class LazyGroup(click.Group):
    """A group that imports a subcommand's module the first time it is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module_name, _, attribute = entry[0].partition(":")
        module = importlib.import_module(f"polybuild.cli.{module_name}")
        command: click.Command = getattr(module, attribute or "command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, help_) for name, (_, help_) in sorted(COMMANDS.items()) if help_]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="polybuild")
@click.option("--debug", "-D", is_flag=True, help="Show tracebacks and debug output.")
@click.option(
    "--builder", default=None, metavar="NAME", help="The builder to use (as $BUILDX_BUILDER)."
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, builder: str | None) -> None:
    """Build container images for many platforms at once, without a daemon."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    if debug:
        os.environ["POLYBUILD_DEBUG"] = "1"
    if builder:
        # buildx's root --builder: every command that takes --builder reads $BUILDX_BUILDER.
        os.environ["BUILDX_BUILDER"] = builder


def _debug_requested(argv: list[str]) -> bool:
    return os.environ.get("POLYBUILD_DEBUG") == "1" or any(a in ("--debug", "-D") for a in argv)


def _command_name(argv: list[str]) -> str:
    """The subcommand argv runs (after the root's own options)."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--builder":
            skip = True
        elif not arg.startswith("-"):
            return arg
    return ""


def _root_debug_anywhere(argv: list[str]) -> list[str]:
    """buildx's -D/--debug is a flag of the root command that may follow the subcommand
    (`polybuild build -D .`): moved before it (up to a `--`), where click reads it."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in ("-D", "--debug")]
    if not flags:
        return argv
    return ["--debug", *(a for a in argv[:end] if a not in ("-D", "--debug")), *argv[end:]]


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a cancelled CI job, `timeout`) and SIGHUP (the terminal closed) stop us as
    Ctrl-C does: containers are killed and everything is cleaned up on the way out (mounts,
    network namespaces, bundles), instead of dying without a `finally`."""
    del signum, frame
    raise KeyboardInterrupt


def _shown(text: str) -> str:
    """An error as printed: on a terminal without the escape sequences and control
    characters a Dockerfile or a registry may have put in it (it quotes them)."""
    try:
        terminal = sys.stderr.isatty()
    except (AttributeError, ValueError):
        terminal = False
    if not terminal:
        return text
    from polybuild.progress.sanitize import clean

    return clean(text, keep="\n")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the command, render errors as one line plus a hint."""
    # A crash in a C extension (SIGSEGV, SIGABRT...) prints every thread's Python stack.
    with contextlib.suppress(OSError, ValueError):  # stderr may have no file descriptor
        faulthandler.enable()
    signal.signal(signal.SIGTERM, _terminate)
    if signal.getsignal(signal.SIGHUP) is signal.SIG_DFL:  # not under nohup
        signal.signal(signal.SIGHUP, _terminate)
    args = _root_debug_anywhere(list(sys.argv[1:] if argv is None else argv))
    args = bool_flags.normalize(args, cli)
    debug = _debug_requested(args)
    command = _command_name(args)
    try:
        cli.main(args=args, prog_name="polybuild", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(exit_code_for(KeyboardInterrupt()))
    except click.ClickException as exc:
        flag_error = flag_error_text(exc, args, cli, "polybuild")
        if flag_error is not None:
            click.echo(flag_error, err=True)
            sys.exit(FLAG_ERROR)
        exc.show()
        sys.exit(exc.exit_code if exc.exit_code else USAGE)
    except StepFailedError as exc:
        if debug:
            traceback.print_exc()
        # buildx's report of a failed solve: the Dockerfile lines, then the error wrapped as
        # its build command and BuildKit's solver wrap it (the step's output is above)
        click.echo(_shown(exc.excerpt), err=True, nl=False)
        click.secho(_shown(f"ERROR: failed to build: failed to solve: {exc}"), err=True, fg="red")
        if exc.hint:
            click.echo(_shown(f"hint: {exc.hint}"), err=True)
        sys.exit(exit_code_for(exc, command))
    except PolybuildError as exc:
        if debug:
            traceback.print_exc()
        click.secho(_shown(f"ERROR: {exc}"), err=True, fg="red")
        if exc.hint:
            click.echo(_shown(f"hint: {exc.hint}"), err=True)
        sys.exit(exit_code_for(exc, command))
    except KeyboardInterrupt:
        sys.exit(exit_code_for(KeyboardInterrupt()))
    except Exception as exc:
        if debug:
            traceback.print_exc()
        else:
            click.secho(f"ERROR: internal error: {type(exc).__name__}: {exc}", err=True, fg="red")
            click.echo("hint: run again with --debug for a traceback and report it", err=True)
        sys.exit(1)


def run() -> None:
    """The `polybuild` program: `main`, then an exit without the interpreter's teardown.

    After the command, Python's exit joins threads and runs atexit hooks (kept here, in
    that order), then frees every module and object one by one: 40-130 ms here after a
    build, about a tenth of a cached one, for memory the kernel takes back anyway. Every
    file, lock and container is closed by `with` blocks before `main` returns.
    """
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _exit_status(exc.code)
    threading._shutdown()  # type: ignore[attr-defined]  # what Py_Finalize calls first
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): Python's own exit says 120
            code = code or 120
    os._exit(code)


def _exit_status(code: object) -> int:
    """The status `sys.exit(code)` gives: None 0, an int itself, anything else printed, 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    with contextlib.suppress(OSError, ValueError):
        print(code, file=sys.stderr)
    return 1


def option_value(ctx: click.Context, name: str) -> Any:
    """A value the root group stored on the context (for example "debug")."""
    return ctx.find_root().obj.get(name) if ctx.find_root().obj else None
