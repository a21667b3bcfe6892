"""`polybuild prune --filter until=...` on this machine: only the cache records unused for
that long go; the others still hit, and the layers they use stay."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import import_busybox, require_root, run_cli

pytestmark = [pytest.mark.root, pytest.mark.integration]


def build(root: Path, ctx: Path, out: Path) -> str:
    done = run_cli(root, "build", "--platform", "linux/amd64",
                   "-o", f"type=local,dest={out}", str(ctx))  # fmt: skip
    assert done.returncode == 0, done.stderr
    return (out / "u").read_text()


def test_prune_until_keeps_what_was_used_recently(tmp_path: Path) -> None:
    require_root()
    root = tmp_path / "root"
    import_busybox(root, ("amd64",))
    old, new = tmp_path / "old", tmp_path / "new"
    for ctx, word in ((old, "old"), (new, "new")):
        ctx.mkdir()
        (ctx / "Dockerfile").write_text(
            f"FROM busybox\nRUN echo {word} && cat /proc/sys/kernel/random/uuid > /u\n"
        )
    old_first = build(root, old, tmp_path / "o1")
    time.sleep(3)
    new_first = build(root, new, tmp_path / "o2")
    pruned = run_cli(root, "prune", "--force", "--filter", "until=2s")
    assert pruned.returncode == 0, pruned.stderr
    assert "Removed 1 cache records" in pruned.stdout, pruned.stdout
    assert build(root, new, tmp_path / "o3") == new_first  # kept: still a hit
    assert build(root, old, tmp_path / "o4") != old_first  # pruned: the step ran again
    bad = run_cli(root, "prune", "--force", "--filter", "type=regular")
    assert bad.returncode == 2 and "only until=DURATION" in bad.stderr
