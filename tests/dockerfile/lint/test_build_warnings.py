"""A build prints its Dockerfile's lint warnings at the end, as buildx lists BuildKit's, and
`# check=error=true` fails it before anything is built."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import require_root, run_cli

pytestmark = [pytest.mark.root]

DOCKERFILE = "FROM scratch as base\nCOPY a /a\nCMD echo hi\n"
# The count line's wording and colour are the progress renderer's; the list is buildx's
# ` - ` and BuildKit's short form of each warning.
WARNINGS = (
    " - FromAsCasing: 'as' and 'FROM' keywords' casing do not match (line {0})\n"
    " - JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended"
    " behavior related to OS signals (line {1})\n"
)


def build(tmp_path: Path, text: str, *args: str) -> tuple[int, str, Path]:
    require_root()
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(text)
    (context / "a").write_text("a\n")
    dest = tmp_path / "out"
    done = run_cli(
        tmp_path / "root",
        "build", "--progress=plain", "-o", f"type=local,dest={dest}", *args, str(context),
    )  # fmt: skip
    return done.returncode, done.stderr, dest


def test_build_prints_its_warnings_at_the_end(tmp_path: Path) -> None:
    code, err, dest = build(tmp_path, DOCKERFILE)
    assert code == 0, err
    assert err.endswith(WARNINGS.format(1, 3))
    assert "2 warnings found" in err
    assert (dest / "a").read_text() == "a\n"


def test_skipped_rules_are_not_printed(tmp_path: Path) -> None:
    code, err, _ = build(tmp_path, "# check=skip=all\n" + DOCKERFILE)
    assert code == 0, err
    assert "warning" not in err


def test_error_true_fails_the_build_before_it_runs(tmp_path: Path) -> None:
    code, err, dest = build(tmp_path, "# check=error=true\n" + DOCKERFILE)
    assert code == 1
    assert WARNINGS.format(2, 4) in err
    assert "lint violation found for rules: FromAsCasing, JSONArgsRecommended" in err
    assert "COPY a /a" not in err
    assert not dest.exists()


def test_build_arg_turns_error_on(tmp_path: Path) -> None:
    code, err, _ = build(
        tmp_path, DOCKERFILE, "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=error=true"
    )
    assert code == 1
    assert "lint violation found for rules:" in err
