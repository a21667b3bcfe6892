"""BuildKit v0.32.2's own test vectors: shell expansion, word splitting, parser golden files."""

from __future__ import annotations

from pathlib import Path

import pytest

from polybuild.dockerfile.dump import dump
from polybuild.dockerfile.parser import parse
from polybuild.dockerfile.shell import expand_word, expand_words
from polybuild.dockerfile.stages import from_parse_result
from polybuild.errors import DockerfileError

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO.parent / "shared" / "conformance" / "buildkit-v0.32.2"
ENV = {"PWD": "/home", "SHELL": "bash", "KOREAN": "한국어", "NULL": ""}


@pytest.fixture(scope="module")
def vectors() -> Path:
    if not (VECTORS / "shell" / "envVarTest").is_file():
        pytest.fail(
            f"BuildKit conformance vectors not found at {VECTORS}; "
            "they live in ../shared/conformance beside the repository"
        )
    return VECTORS


def _report(capsys: pytest.CaptureFixture[str], name: str, passed: int, total: int) -> None:
    with capsys.disabled():
        print(f"\n{name}: {passed}/{total} passed")


def test_env_var_vectors(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failures, total = [], 0
    for raw in (vectors / "shell" / "envVarTest").read_text(encoding="utf-8").splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        tag, source, expected = (part.strip() for part in raw.strip().split("|"))
        if tag == "W":
            continue
        total += 1
        try:
            got = expand_word(source, ENV)
        except ValueError:
            got = "error"
        if got != expected:
            failures.append((source, expected, got))
    _report(capsys, "envVarTest A/U", total - len(failures), total)
    assert total == 228
    assert failures == []


def test_words_vectors(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env: dict[str, str] = {}
    failures, total = [], 0
    for raw in (vectors / "shell" / "wordsTest").read_text(encoding="utf-8").splitlines():
        if raw.startswith("#") or not raw.strip():
            continue
        if raw.startswith("ENV "):
            key, _, value = raw[3:].lstrip(" ").partition("=")
            env[key] = value
            continue
        source, expected_text = raw.split("|", 1)
        expected = expected_text.lstrip(" ").split(",")
        total += 1
        try:
            got = expand_words(source.strip(), env)
        except ValueError:
            got = ["error"]
        if got != expected:
            failures.append((source, expected, got))
    _report(capsys, "wordsTest", total - len(failures), total)
    assert total == 24
    assert failures == []


def test_parser_golden_files(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = sorted(p for p in (vectors / "parser" / "testfiles").iterdir() if p.is_dir())
    failures = []
    for case in cases:
        got = dump(parse((case / "Dockerfile").read_bytes()))
        if got.encode() != (case / "result").read_bytes():
            failures.append(case.name)
    _report(capsys, "parser/testfiles", len(cases) - len(failures), len(cases))
    assert len(cases) == 33
    assert failures == []


def test_parser_negative_files(vectors: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = sorted(p for p in (vectors / "parser" / "testfiles-negative").iterdir() if p.is_dir())
    accepted = []
    for case in cases:
        try:
            from_parse_result(parse((case / "Dockerfile").read_bytes()))
        except DockerfileError as exc:
            assert str(exc).startswith("Dockerfile")
        else:
            accepted.append(case.name)
    _report(capsys, "parser/testfiles-negative rejected", len(cases) - len(accepted), len(cases))
    assert len(cases) == 4
    assert accepted == []
