"""QEMU's stored slow-down factors: written atomically, read back only when every value is a
sane number, and a link at the path replaced rather than followed."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from polybuild.errors import PolybuildError
from polybuild.insight.factors import FACTORS_PATH, load_factors, save_factors

FACTORS = {"linux/amd64": 1.0, "linux/arm64": 8.1, "linux/arm/v7": 11.5}


def save(root: Path, factors: dict[str, float] = FACTORS) -> Path:
    return save_factors(
        root, factors, workload="awk loop", native="linux/amd64", measured=1_700_000_000.0
    )


def write(root: Path, text: str | bytes) -> Path:
    path = root / FACTORS_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def document(factors: object) -> str:
    return json.dumps({"version": 1, "native": "linux/amd64", "factors": factors})


def test_never_measured_is_empty(tmp_path: Path) -> None:
    assert load_factors(tmp_path) == {}
    assert load_factors(tmp_path / "missing") == {}


def test_round_trip(tmp_path: Path) -> None:
    path = save_factors(
        tmp_path,
        FACTORS,
        workload="awk loop",
        native="linux/amd64",
        measured=1_700_000_000.0,
        seconds={"linux/amd64": 0.4, "linux/arm64": 3.24, "linux/arm/v7": 4.6},
    )
    assert path == tmp_path / "insight" / "qemu-factors.json"
    assert load_factors(tmp_path) == FACTORS
    stored = json.loads(path.read_text())
    assert stored["native"] == "linux/amd64"
    assert stored["workload"] == "awk loop"
    assert stored["measured"] == 1_700_000_000.0
    assert stored["measuredAt"] == "2023-11-14T22:13:20Z"
    assert stored["seconds"]["linux/arm64"] == 3.24
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in path.parent.iterdir()] == ["qemu-factors.json"]  # no temp left


def test_save_replaces_the_last_measure(tmp_path: Path) -> None:
    save(tmp_path)
    save(tmp_path, {"linux/amd64": 1.0, "linux/riscv64": 20.0})
    assert load_factors(tmp_path) == {"linux/amd64": 1.0, "linux/riscv64": 20.0}


def test_save_creates_a_private_data_root(tmp_path: Path) -> None:
    root = tmp_path / "new" / "root"
    save(root)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert load_factors(root) == FACTORS


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "[]",
        "null",
        '"factors"',
        b"\xff\xfe{}",
        json.dumps({"factors": [1.0, 2.0]}),
        document({"linux/arm64": "8.1"}),
        document({"linux/arm64": True}),
        document({"linux/arm64": None}),
        document({"linux/arm64": {"x": 1}}),
    ],
)
def test_a_corrupt_file_is_never_measured(tmp_path: Path, text: str | bytes) -> None:
    write(tmp_path, text)
    assert load_factors(tmp_path) == {}


@pytest.mark.parametrize(
    "text",
    [
        '{"factors": {"linux/arm64": NaN}}',
        '{"factors": {"linux/arm64": Infinity}}',
        '{"factors": {"linux/arm64": -Infinity}}',
        document({"linux/arm64": -8.1}),
        document({"linux/arm64": 0}),
        document({"linux/arm64": 1e308}),
        '{"factors": {"linux/arm64": 1' + "0" * 400 + "}}",
        document({"linux/arm64": 1e999}),  # json.dumps writes Infinity
        document({"linux/arm64": 8.1, "linux/arm/v7": -1}),  # one bad value spoils the file
        document({"../../etc": 2.0}),
        document({"linux/ARM64": 2.0}),
        document({"linux/arm64\n": 2.0}),
        document({f"linux/arm{i}": 2.0 for i in range(65)}),
    ],
)
def test_hostile_values_are_never_measured(tmp_path: Path, text: str) -> None:
    write(tmp_path, text)
    assert load_factors(tmp_path) == {}


def test_deep_nesting_is_never_measured(tmp_path: Path) -> None:
    write(tmp_path, '{"factors": ' + "[" * 50_000 + "]" * 50_000 + "}")
    assert load_factors(tmp_path) == {}


def test_a_huge_file_is_not_read(tmp_path: Path) -> None:
    text = document({"linux/arm64": 8.1})
    write(tmp_path, text[:-1] + ', "pad": "' + "x" * 70_000 + '"}')
    assert load_factors(tmp_path) == {}
    write(tmp_path, text)
    assert load_factors(tmp_path) == {"linux/arm64": 8.1}


def test_a_link_or_fifo_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(document({"linux/arm64": 8.1}))
    path = tmp_path / FACTORS_PATH
    path.parent.mkdir()
    path.symlink_to(elsewhere)
    assert load_factors(tmp_path) == {}
    path.unlink()
    os.mkfifo(path)
    assert load_factors(tmp_path) == {}  # and does not block


def test_a_linked_directory_is_not_read(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / FACTORS_PATH.name).write_text(document({"linux/arm64": 8.1}))
    (tmp_path / "insight").symlink_to(elsewhere)
    assert load_factors(tmp_path) == {}
    with pytest.raises(PolybuildError, match="cannot store"):
        save(tmp_path)
    assert json.loads((elsewhere / FACTORS_PATH.name).read_text())["factors"] == {
        "linux/arm64": 8.1
    }


def test_a_link_at_the_path_is_replaced_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    path = tmp_path / FACTORS_PATH
    path.parent.mkdir()
    path.symlink_to(victim)
    save(tmp_path)
    assert victim.read_text() == "precious"
    assert not path.is_symlink()
    assert load_factors(tmp_path) == FACTORS


@pytest.mark.parametrize(
    "factors",
    [{}, {"linux/arm64": float("nan")}, {"linux/arm64": -2.0}, {"arm64": 2.0}],
)
def test_save_refuses_what_load_would_refuse(tmp_path: Path, factors: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="slow-down factors"):
        save(tmp_path, factors)
    assert not (tmp_path / FACTORS_PATH).exists()
