"""An error quoting hostile text (a Dockerfile's RUN line, a registry's message) reaches a
terminal without its escape sequences; a pipe or a file gets it as it is, as buildx's."""

from __future__ import annotations

import io

import pytest

from polybuild.cli import _shown

HOSTILE = "ERROR: process \"/bin/sh -c printf '\x1b]0;PWNED\x07\x1b[2J'\" failed\nnext line"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_an_error_on_a_terminal_loses_its_escape_sequences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stderr", _Terminal())
    assert _shown(HOSTILE) == "ERROR: process \"/bin/sh -c printf ''\" failed\nnext line"


def test_an_error_into_a_pipe_is_left_as_it_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert _shown(HOSTILE) == HOSTILE
