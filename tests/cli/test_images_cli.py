"""`polybuild images`, `rmi`, `load` and `save` end to end on a POLYBUILD_ROOT in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polybuild.cli import main
from polybuild.cli.exit_codes import USAGE
from polybuild.image.store import ImageStore
from polybuild.image.testing import write_image, write_index
from polybuild.platforms import Platform

AMD64 = Platform("linux", "amd64")
ARM64 = Platform("linux", "arm64")
POLYBUILD = Path(sys.executable).with_name("polybuild")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("POLYBUILD_ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _seed(root: Path) -> ImageStore:
    store = ImageStore(root)
    store.tag("busybox", write_index(store.content, [AMD64, ARM64]))
    store.tag("ghcr.io/org/app:v1", write_image(store.content, ARM64, {"app": b"v1"}))
    return store


def test_images_table_and_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = _seed(root)
    code, out, _ = run(capsys, "images")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "PLATFORMS", "SIZE"]
    busybox = store.resolve("busybox").target.digest
    assert lines[1].split()[:4] == ["busybox", "latest", busybox.short(), "linux/amd64,linux/arm64"]
    assert lines[2].split()[:3] == [
        "ghcr.io/org/app",
        "v1",
        store.resolve("ghcr.io/org/app:v1").target.digest.short(),
    ]

    code, out, _ = run(capsys, "images", "--format", "json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["Name"] == "docker.io/library/busybox:latest"
    assert rows[0]["Digest"] == str(busybox)
    assert rows[0]["Platforms"] == ["linux/amd64", "linux/arm64"]
    assert rows[0]["Size"] == sum(store.content.size(d) for d in store.content) - rows[1]["Size"]

    code, out, _ = run(capsys, "images", "--no-trunc", "--digests")
    assert str(busybox) in out.splitlines()[1]
    code, out, _ = run(capsys, "images", "-q")
    assert out.split() == [
        busybox.short(),
        store.resolve("ghcr.io/org/app:v1").target.digest.short(),
    ]


def test_images_on_an_empty_root(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "images")
    assert code == 0 and out.split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "PLATFORMS", "SIZE"]


def test_save_rmi_load_round_trip(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _seed(root)
    before = set(store.content)
    busybox = store.resolve("busybox").target
    archive = tmp_path / "both.tar"
    code, _, err = run(capsys, "save", "-o", str(archive), "busybox", "ghcr.io/org/app:v1")
    assert code == 0, err

    code, out, _ = run(capsys, "rmi", "busybox", "ghcr.io/org/app:v1")
    assert code == 0
    assert "Untagged: busybox:latest" in out and f"Deleted: {busybox.digest}" in out
    assert list(store.content) == [] and store.records() == []

    code, out, err = run(capsys, "load", "-i", str(archive))
    assert code == 0, err
    assert out.splitlines() == ["Loaded image: busybox:latest", "Loaded image: ghcr.io/org/app:v1"]
    assert set(store.content) == before
    assert store.resolve("busybox").target == busybox
    assert store.platforms(busybox) == (AMD64, ARM64)


def test_errors_are_rendered_with_hints(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(root)
    code, _, err = run(capsys, "rmi", "nope")
    assert code == 8
    assert "ERROR: no such image: nope" in err and "hint:" in err
    code, _, err = run(capsys, "save", "-o", str(tmp_path / "x.tar"), "Bad Name")
    assert code == USAGE and "invalid reference" in err
    assert not (tmp_path / "x.tar").exists()
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all" * 64)
    code, _, err = run(capsys, "load", "-i", str(tmp_path / "junk.tar"))
    assert code == 9 and "not a valid tar archive" in err
    code, _, err = run(capsys, "load", "-i", str(tmp_path / "missing.tar"))
    assert code == USAGE and "cannot open" in err
    code, _, err = run(capsys, "rmi")
    assert code == USAGE


def test_rmi_by_id_with_two_names_needs_force(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _seed(root)
    target = store.resolve("busybox").target
    store.tag("busybox:copy", target)
    code, _, err = run(capsys, "rmi", target.digest.short())
    assert code == 9 and "must be forced" in err
    code, out, _ = run(capsys, "rmi", "-f", target.digest.short())
    assert code == 0 and f"Deleted: {target.digest}" in out
    assert not store.content.exists(target.digest)


@pytest.mark.root
def test_stdin_and_stdout_through_the_console_script(root: Path, tmp_path: Path) -> None:
    _seed(root)
    env = {**os.environ, "POLYBUILD_ROOT": str(root)}
    archive = tmp_path / "piped.tar"
    with archive.open("wb") as out:
        subprocess.run(
            [str(POLYBUILD), "save", "busybox"], stdout=out, env=env, check=True, timeout=60
        )
    other = {**env, "POLYBUILD_ROOT": str(tmp_path / "other")}
    with archive.open("rb") as inp:
        result = subprocess.run(
            [str(POLYBUILD), "load"],
            check=False,
            stdin=inp,
            env=other,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Loaded image: busybox:latest"
    images = subprocess.run(
        [str(POLYBUILD), "images", "--format", "json"],
        env=other,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(images.stdout)["Platforms"] == ["linux/amd64", "linux/arm64"]
