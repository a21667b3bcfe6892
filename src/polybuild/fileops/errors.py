"""The error every file operation (COPY, ADD, WORKDIR) raises, naming the instruction it ran for."""

from __future__ import annotations

from polybuild.errors import ExecutionError


class FileOpError(ExecutionError):
    """COPY/ADD/WORKDIR failed; `instruction` is the Dockerfile text it ran for (may be empty)."""

    def __init__(self, message: str, *, instruction: str = "", hint: str | None = None) -> None:
        super().__init__(f"{instruction}: {message}" if instruction else message, hint=hint)
        self.reason = message
        self.instruction = instruction
