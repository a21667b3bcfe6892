"""benchmarks/sbom.py on a small root: the generated packages are all found, in a child."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks import sbom


def test_a_small_run_finds_every_generated_package(tmp_path: Path) -> None:
    figures = sbom.run(argparse.Namespace(files=5_000, trials=1), tmp_path)
    assert figures["ok"] is True
    assert figures["files"] == 5_000
    (trial,) = figures["trials"]  # type: ignore[misc]
    assert trial["packages"] == 2_500 and trial["warnings"] == 0
    assert trial["max_rss_kib"] > figures["import_only_max_rss_kib"]  # type: ignore[operator]
