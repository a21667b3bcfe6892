"""Word splitting and `$VAR` / `${VAR:-word}` expansion with BuildKit's shell-lexer rules.

The lexer itself is `e2b-dockerfile-utils`' port of BuildKit's `frontend/dockerfile/shell`
(checked by the conformance tests against BuildKit's own envVarTest and wordsTest vectors);
this module is the one place polybuild calls it, so it can be replaced without touching callers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from e2b_dockerfile_utils import ShellLex

_NO_ENV: Mapping[str, str] = {}
# Words made only of plain ASCII text and `$NAME` / `${NAME}` references expand by plain
# substitution; the general lexer walks every character of every value, which is slow when
# values grow long (PATH=/x:$PATH repeated), and gives the same result for these words.
_SIMPLE_WORD = re.compile(r"(?:[^$'\"\\`<]|\$[A-Za-z_][A-Za-z0-9_]*|\$\{[A-Za-z_][A-Za-z0-9_]*\})*")
_REFERENCE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def lex_words(
    text: str,
    *,
    escape: str = "\\",
    skip_unset: bool = False,
    raw_quotes: bool = False,
    raw_escapes: bool = False,
) -> list[str]:
    """Split `text` into words without an environment (used by the parser for heredocs)."""
    lexer = ShellLex(
        escape,
        raw_quotes=raw_quotes,
        raw_escapes=raw_escapes,
        env=_NO_ENV,
        skip_unset_env=skip_unset,
    )
    return lexer.process_words(text)


def expand_word(word: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """One word with quotes removed and variables expanded (unset ones become empty).

    Raises ValueError with BuildKit's message for bad syntax or a failed `${V:?msg}`.
    """
    if word.isascii() and _SIMPLE_WORD.fullmatch(word):
        return _REFERENCE.sub(lambda m: env.get(m.group(1) or m.group(2), ""), word)
    return ShellLex(escape, env=env, skip_unset_env=False).process_word(word)


def expand_words(text: str, env: Mapping[str, str], *, escape: str = "\\") -> list[str]:
    """Split into words the way a shell would after expansion (used by EXPOSE)."""
    return ShellLex(escape, env=env, skip_unset_env=False).process_words(text)


def expand_display(text: str, env: Mapping[str, str], *, escape: str = "\\") -> str:
    """A step's name as BuildKit's processCmdEnv expands it: quotes kept, unset variables
    left as written; text that does not expand stays as it is."""
    try:
        return ShellLex(escape, raw_quotes=True, env=env, skip_unset_env=True).process_word(text)
    except ValueError:
        return text


def expand_heredoc(content: str, env: Mapping[str, str]) -> str:
    """Expand variables in heredoc content; quotes are ordinary characters there."""
    lexer = ShellLex("\\", skip_process_quotes=True, env=env, skip_unset_env=False)
    return lexer.process_word(content)


__all__ = ["expand_display", "expand_heredoc", "expand_word", "expand_words", "lex_words"]
