"""`polybuild history` on stored records (no build): Go templates as docker's formatter and
buildx's inspect take them, ^N refs, and buildx's errors with their exit codes."""

from __future__ import annotations

import json
import time
from pathlib import Path

from polybuild.history import COMPLETED, ERROR, BuildRecord, HistoryStore, StepRecord
from tests.conftest import run_cli


def save(root: Path, ref: str, started: float, status: str, name: str) -> None:
    step = StepRecord("sha256:a", "[1/1] RUN true", started, started + 1, cached=True)
    HistoryStore(root).save(
        BuildRecord(
            ref=ref.ljust(25, "0"),
            name=name,
            builder="default",
            node_name="default0",
            started=started,
            completed=started + 1.5,
            status=status,
            steps=(step,),
            platforms=("linux/amd64",),
        )
    )


def test_templates_refs_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "root"
    empty = run_cli(root, "history", "inspect")
    assert (empty.returncode, empty.stderr.strip()) == (1, "ERROR: no records found")
    now = time.time()
    save(root, "old", now - 100, COMPLETED, "first")
    save(root, "new", now - 10, ERROR, "second")

    plain = run_cli(root, "history", "ls", "--format", "{{.Ref}} {{.Name}} {{.Status}}")
    assert plain.stdout.splitlines() == [
        "new0000000000000000000000 second Error",
        "old0000000000000000000000 first Completed",
    ]
    table = run_cli(root, "history", "ls", "--format", r"table {{.Name}}\t{{.Duration}}")
    assert table.stdout.splitlines() == [
        "NAME      DURATION",
        "second    1.5s",
        "first     1.5s",
    ]
    full = run_cli(root, "history", "ls", "--format", "{{.FullRef}}")
    assert full.stdout.splitlines()[0] == "default/default0/new0000000000000000000000"

    shown = run_cli(root, "history", "inspect", "^1", "--format", "{{.Name}}: {{.Status}}")
    assert shown.stdout == "first: completed\n"
    data = json.loads(run_cli(root, "history", "inspect", "new", "--format", "json").stdout)
    assert (data["Ref"], data["Status"], data["NumCachedSteps"]) == (
        "new0000000000000000000000",
        "failed",
        1,
    )
    text = run_cli(root, "history", "inspect", "old").stdout
    assert "Ref:" not in text and "Build Steps:\t1/1 (100% cached)\n" in text

    missing = run_cli(root, "history", "inspect", "^2")
    assert (missing.returncode, missing.stderr.strip()) == (
        1,
        'ERROR: no record found for ref "^2"',
    )
    bad = run_cli(root, "history", "ls", "--filter", "color=red")
    assert bad.returncode == 2 and 'unsupported filter "color=red"' in bad.stderr
    both = run_cli(root, "history", "rm", "--all", "new")
    assert "rm requires either --all or at least one argument" in both.stderr
    assert run_cli(root, "history", "rm", "new").returncode == 0
    assert [r.name for r in HistoryStore(root).records()] == ["first"]
