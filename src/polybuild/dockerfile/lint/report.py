"""Lint results and how buildx shows them: `--call check` text (each warning with its
Dockerfile excerpt), the JSON BuildKit's frontend returns, and a build's short list."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from polybuild.dockerfile.lint.rules import Rule

RULE_LINE = "-" * 20


@dataclass(frozen=True, slots=True)
class LintWarning:
    """One warning: the rule, its message (`detail`) and the lines (first, last) it points at."""

    rule: Rule
    detail: str
    ranges: tuple[tuple[int, int], ...]

    @property
    def line(self) -> int:
        return self.ranges[0][0] if self.ranges else 0

    def short(self) -> str:
        """BuildKit's one-line form (linter.LintFormatShort): `Rule: message (line N)`."""
        text = f"{self.rule.name}: {self.detail}"
        return f"{text} (line {self.line})" if self.line > 0 else text


@dataclass(frozen=True, slots=True)
class LintResults:
    """Every warning of one Dockerfile in the order the rules found them; `error` is the
    message of a problem that stopped the check (BuildKit's buildError), with its lines."""

    filename: str
    source: str
    warnings: tuple[LintWarning, ...]
    error: str | None = None
    error_ranges: tuple[tuple[int, int], ...] = ()
    fail: bool = False  # `error=true`: the warnings fail a build

    def sorted_warnings(self) -> list[LintWarning]:
        """The order buildx prints them: warnings without a location first, then by line."""
        return sorted(self.warnings, key=lambda w: (bool(w.ranges), w.line))

    def failure(self) -> str | None:
        """BuildKit's error when `error=true` and a rule fired, else None."""
        if not self.fail or not self.warnings:
            return None
        names = ", ".join(dict.fromkeys(w.rule.name for w in self.warnings))
        return f"lint violation found for rules: {names}"


def excerpt(filename: str, source: str, ranges: tuple[tuple[int, int], ...]) -> str:
    """The lines around `ranges` as BuildKit's errdefs.Source.Print shows them."""
    if not ranges:
        return ""
    lines = source.split("\n")
    start = min(first for first, _ in ranges)
    end = max(max(first, last) for first, last in ranges)
    if start > len(lines) or start < 1:
        return ""
    end = min(end, len(lines))
    pad = 4 if start == end else 2
    used = 0
    shown_start, shown_end = start, end
    while used < pad:
        if shown_start > 1:
            shown_start -= 1
            used += 1
        if shown_end != len(lines):
            shown_end += 1
            used += 1
        used += 1
    out = [f"{filename}:{start}", RULE_LINE]
    for number in range(shown_start, shown_end + 1):
        marked = any(first <= number <= max(first, last) for first, last in ranges)
        out.append(f" {number:3d} | {'>>>' if marked else '   '} {lines[number - 1]}")
    out.append(RULE_LINE)
    return "\n".join(out) + "\n"


def render_check(results: LintResults) -> str:
    """What `buildx build --call check` prints on stdout (commands/build.go printResult)."""
    count = len(results.warnings)
    out: list[str] = []
    if count:
        found = "1 warning has been found!" if count == 1 else f"{count} warnings have been found!"
        out.append(f"Check complete, {found}\n")
    for warning in results.sorted_warnings():
        head = f"\nWARNING: {warning.rule.name}"
        if warning.rule.url:
            head += f" - {warning.rule.url}"
        out.append(f"{head}\n{warning.detail}\n")
        out.append(excerpt(results.filename, results.source, warning.ranges))
    if results.error is None and not count:
        out.append("Check complete, no warnings found.\n")
    return "".join(out)


def render_error(results: LintResults) -> str:
    """The check's build error as buildx prints it (PrintErrorTo): message, then excerpt."""
    if results.error is None:
        return ""
    return f"{results.error}\n" + excerpt(results.filename, results.source, results.error_ranges)


def _location(ranges: tuple[tuple[int, int], ...]) -> dict[str, object]:
    # sourceIndex 0 is omitted by Go's omitempty; so are line 0 and character 0.
    def position(line: int) -> dict[str, int]:
        return {"line": line} if line else {}

    if not ranges:
        return {}
    return {"ranges": [{"start": position(a), "end": position(b)} for a, b in ranges]}


def to_json(results: LintResults) -> str:
    """BuildKit's result.json (json.MarshalIndent of lint.LintResults, two-space indent)."""
    warnings = []
    for warning in results.warnings:
        item: dict[str, object] = {"ruleName": warning.rule.name}
        if warning.rule.description:
            item["description"] = warning.rule.description
        if warning.rule.url:
            item["url"] = warning.rule.url
        if warning.detail:
            item["detail"] = warning.detail
        item["location"] = _location(warning.ranges)
        warnings.append(item)
    source: dict[str, object] = {"filename": results.filename}
    if results.source:
        source["data"] = base64.b64encode(
            results.source.encode("utf-8", "surrogateescape")
        ).decode()
    source["language"] = "Dockerfile"
    value: dict[str, object] = {"warnings": warnings or None, "sources": [source]}
    if results.error is not None:
        value["buildError"] = {
            "message": results.error,
            "location": _location(results.error_ranges),
        }
    return _go_json(value)


def _go_json(value: object) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False)
    # encoding/json's HTML-safe escapes
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render_build_warnings(results: LintResults, *, debug: bool = False) -> str:
    """The block buildx prints after a build (printWarnings): the count, then each warning's
    short form (with `debug`: its description, URL and excerpt too)."""
    if not results.warnings:
        return ""
    count = len(results.warnings)
    head = "1 warning found" if count == 1 else f"{count} warnings found"
    if not debug:
        head += " (use docker --debug to expand)"
    out = [f"\n {head}:\n"]
    for warning in results.warnings:
        out.append(f" - {warning.short()}\n")
        if not debug:
            continue
        out.append(f"{warning.rule.description}\n")
        if warning.rule.url:
            out.append(f"More info: {warning.rule.url}\n")
        out.append(excerpt(results.filename, results.source, warning.ranges))
        out.append("\n")
    return "".join(out)
