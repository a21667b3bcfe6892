"""Exit codes of the polybuild command, in one table keyed by error class."""

from __future__ import annotations

import os

from polybuild import errors

OK = 0
FAILURE = 1  # any PolybuildError without a more specific code below
USAGE = 2  # click uses 2 for usage errors too
INTERRUPTED = 130  # SIGINT, as shells report it
FLAG_ERROR = 125  # an unknown flag or a flag's bad value, as buildx (the docker CLI's code)

# Most specific class first: the first entry the error is an instance of decides.
EXIT_CODES: tuple[tuple[type[errors.PolybuildError], int], ...] = (
    (errors.UsageError, USAGE),
    (errors.PlatformError, USAGE),
    (errors.InvalidReferenceError, USAGE),
    (errors.PrivilegeError, 4),
    (errors.EmulationError, 5),
    (errors.DockerfileError, 6),
    (errors.ContentError, 7),
    (errors.ImageNotFoundError, 8),
    (errors.ImageError, 9),
    (errors.ExecutionError, 10),
    (errors.AuthenticationError, 11),
    (errors.RegistryError, 12),
    (errors.RemoteError, 13),
    (errors.NotReproducibleError, 14),
)


# Commands whose failures exit as buildx's do: 1 for any error that is not a usage error
# (130 for Ctrl-C); POLYBUILD_EXIT_CODES=detailed keeps the table's codes for them too.
BUILDX_EXIT_COMMANDS = frozenset({"build"})


def exit_code_for(error: BaseException, command: str = "") -> int:
    """The process exit code for an error that ends `command` (buildx's 1 for a failed
    build; the table's code otherwise)."""
    code = exit_code_of(type(error))
    if (
        command in BUILDX_EXIT_COMMANDS
        and code not in (USAGE, INTERRUPTED)
        and os.environ.get("POLYBUILD_EXIT_CODES") != "detailed"
    ):
        return FAILURE
    return code


def exit_code_of(error_class: type[BaseException]) -> int:
    """The process exit code for every error of this class (errors.py's tree lists them)."""
    if issubclass(error_class, KeyboardInterrupt):
        return INTERRUPTED
    for cls, code in EXIT_CODES:
        if issubclass(error_class, cls):
            return code
    return FAILURE
