"""The warnings one lint run collects, each rule filtered through the config in force."""

from __future__ import annotations

from polybuild.dockerfile.lint.config import LintConfig, with_comments
from polybuild.dockerfile.lint.report import LintWarning
from polybuild.dockerfile.lint.rules import Rule
from polybuild.dockerfile.syntax import Location


class Collector:
    """Collects warnings in the order rules fire (BuildKit's linter.Linter.Run)."""

    def __init__(self, config: LintConfig) -> None:
        self.config = config
        self.warnings: list[LintWarning] = []

    def warn(
        self,
        rule: Rule,
        detail: str,
        location: Location | None,
        *,
        comments: tuple[str, ...] = (),
    ) -> None:
        config = with_comments(self.config, comments) if comments else self.config
        if not config.runs(rule.name, rule.experimental):
            return
        ranges = ((location.start, location.end),) if location is not None else ()
        self.warnings.append(LintWarning(rule, detail or rule.description, ranges))


def suggest(value: str, options: list[str], *, case_sensitive: bool = True) -> str:
    """The closest option within edit distance 2 (BuildKit's util/suggest.Search); "" when
    none is, or when one equals `value`."""
    wanted = value if case_sensitive else value.lower()
    match = ""
    best = 3
    for option in options:
        candidate = option if case_sensitive else option.lower()
        if candidate == wanted:
            return ""
        distance = _levenshtein(wanted, candidate)
        if distance < best:
            match, best = option, distance
    return match


def _levenshtein(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]
