"""`polybuild check [--repair]` on a real data root (busybox + a two-platform build), corrupted
the ways disks and killed processes corrupt things."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from polybuild import syscalls
from polybuild.cli import main
from polybuild.image.digest import Digest
from polybuild.image.store import ImageStore
from polybuild.platforms import Platform
from polybuild.runtime import Runtime
from tests.conftest import import_busybox, require_platforms, require_root, require_tool, run_cli

pytestmark = [pytest.mark.root, pytest.mark.qemu]  # needs root, and QEMU for foreign platforms

PLATFORMS = "linux/amd64,linux/arm64"
DOCKERFILE = "FROM busybox\nRUN echo built > /built\nCOPY file /file\n"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding busybox and `app` (built for two platforms, so with a build cache)."""
    require_root()
    require_tool("runc")
    require_platforms(*PLATFORMS.split(","))
    base = tmp_path_factory.mktemp("check")
    root = base / "root"
    import_busybox(root, ("amd64", "arm64"))
    ctx = base / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "file").write_text("data\n")
    proc = run_cli(root, "build", "--platform", PLATFORMS, "-t", "app", "--load", str(ctx))
    assert proc.returncode == 0, proc.stderr
    return root


@pytest.fixture
def root(template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the template (cp -a: unpacked layers hold whiteout devices)."""
    copy = tmp_path / "root"
    subprocess.run(["cp", "-a", str(template), str(copy)], check=True)
    monkeypatch.setenv("POLYBUILD_ROOT", str(copy))
    return copy


def check(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    """`polybuild check ARGS` in this process: exit code, stdout lines, stderr."""
    try:
        main(["check", *args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out.splitlines(), err


def problems(lines: list[str]) -> list[str]:
    return [line for line in lines if not line.startswith(("note:", "Checked "))]


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def blob_path(root: Path, digest: Digest) -> Path:
    return root / "content" / "blobs" / digest.algorithm / digest.hex


def app_arm64(root: Path) -> tuple[Digest, Digest, Digest]:
    """(manifest, config, top layer) digests of app's linux/arm64 variant."""
    selected = ImageStore(root).select("app", Platform("linux", "arm64"))
    manifest = selected.manifest.value
    return selected.descriptor.digest, manifest.config.digest, manifest.layers[-1].digest


def rewrite(path: Path, change: bytes | None = None, *, truncate: int | None = None) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    if truncate is not None:
        data = data[:truncate]
    if change is not None:
        data[len(data) // 2] ^= change[0]
    path.write_bytes(bytes(data))


def test_a_healthy_store_has_no_problems(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines, _ = check(capsys)
    assert code == 0, lines
    assert problems(lines) == []
    assert "no problems" in lines[-1] and "2 images" in lines[-1] and str(root) in lines[-1]


def test_flipped_byte_in_a_layer_is_found_and_repaired(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, layer = app_arm64(root)
    rewrite(blob_path(root, layer), b"\x01")
    code, lines, err = check(capsys)
    assert code == 1 and "problems in" in err and "--repair" in err
    found = problems(lines)
    assert any(line.startswith(f"blob {layer}: corrupt") for line in found)
    assert any(line.startswith("image app:latest:") and str(layer) in line for line in found)
    assert any(line.startswith("cache record") and str(layer) in line for line in found)
    assert blob_path(root, layer).exists()  # without --repair nothing changes

    code, lines, err = check(capsys, "--repair")
    assert code == 1 and "remain" in err  # the image misses a layer: said, not deleted
    assert any(line.startswith(f"blob {layer}: corrupt") and line.endswith("; removed")
               for line in lines)  # fmt: skip
    assert not blob_path(root, layer).exists()
    image_lines = [line for line in lines if line.startswith("image app:latest:")]
    assert image_lines and all("pull, load or rebuild" in line for line in image_lines)
    assert any(line.endswith("; dropped") for line in lines)
    assert "app:latest" in {r.name.familiar() for r in ImageStore(root).records() if r.name}

    # Rebuilding writes the layer again; then the store is whole.
    ctx = root.parent / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "file").write_text("data\n")
    proc = run_cli(root, "build", "--platform", PLATFORMS, "-t", "app", "--load", str(ctx))
    assert proc.returncode == 0, proc.stderr
    code, lines, _ = check(capsys)
    assert code == 0, lines


def test_a_deleted_layer_blob_voids_cache_records_and_is_reported(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, _, layer = app_arm64(root)
    blob_path(root, layer).unlink()
    code, lines, _ = check(capsys)
    assert code == 1
    assert f"image app:latest: layer {layer} (linux/arm64) is missing" in "\n".join(lines)
    assert any(line.startswith("cache record") and "is missing" in line for line in lines)
    code, lines, _ = check(capsys, "--repair")
    assert code == 1
    assert [line for line in problems(lines) if not line.startswith("image ")] == [
        line for line in problems(lines) if line.endswith("; dropped")
    ]
    code, lines, _ = check(capsys)
    assert all(line.startswith("image app:latest:") for line in problems(lines)), lines


def test_a_truncated_manifest_is_corrupt(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest, _, _ = app_arm64(root)
    rewrite(blob_path(root, manifest), truncate=40)
    code, lines, _ = check(capsys)
    assert code == 1
    text = "\n".join(lines)
    assert f"blob {manifest}: corrupt: its 40 bytes hash to" in text
    assert f"image app:latest: manifest {manifest} (linux/arm64) is corrupt" in text
    code, lines, _ = check(capsys, "--repair")
    assert f"manifest {manifest} (linux/arm64) was corrupt and is removed" in "\n".join(lines)
    assert not blob_path(root, manifest).exists()
    # Afterwards only the amd64 variant is left, which check notes (it cannot tell a lost
    # variant from one never pulled); `run` of the amd64 variant still works.
    code, lines, _ = check(capsys)
    assert code == 0 and any("only some of their platforms" in line for line in lines)
    proc = run_cli(root, "run", "--platform", "linux/amd64", "app", "cat", "/built")
    assert proc.stdout == "built\n", proc.stderr


def test_a_corrupt_cache_database_is_removed_by_repair(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = root / "cache" / "cache.db"
    with database.open("r+b") as f:
        f.write(b"this is not SQLite" * 10)
    code, lines, _ = check(capsys)
    assert code == 1
    assert any(line.startswith(f"cache {database}: the database is damaged") for line in lines)
    ctx = root.parent / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    (ctx / "file").write_text("data\n")
    build = ("build", "--platform", "linux/amd64", "-t", "app", "--load", str(ctx))
    proc = run_cli(root, *build)
    assert proc.returncode == 1 and f"the build cache {database} is damaged" in proc.stderr
    assert "polybuild check --repair" in proc.stderr and "internal error" not in proc.stderr
    code, lines, _ = check(capsys, "--repair")
    assert code == 0, lines
    assert any(line.endswith("removed (the next build runs its steps again)") for line in lines)
    assert not database.exists()
    assert run_cli(root, *build).returncode == 0
    code, lines, _ = check(capsys)
    assert code == 0 and problems(lines) == []


def test_a_damaged_page_fails_the_integrity_check(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = root / "cache" / "cache.db"
    db = sqlite3.connect(database)
    db.execute("PRAGMA journal_mode=DELETE")
    db.executemany(
        "INSERT INTO results VALUES (?, ?, 0, 0)", [(f"k{i}", "[]" + " " * 500) for i in range(200)]
    )
    db.commit()
    db.close()
    data = bytearray(database.read_bytes())
    page = 4096
    data[2 * page : 2 * page + 64] = b"\xff" * 64  # garbage in an index/table page
    database.write_bytes(bytes(data))
    code, lines, _ = check(capsys)
    assert code == 1 and any("the database is damaged" in line for line in lines)


def test_a_record_naming_a_missing_blob_is_dropped(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    absent = Digest.of(b"never stored")
    layers = [{"blob": str(absent), "diff_id": str(absent), "size": 3, "media_type": "x"}]
    db = sqlite3.connect(root / "cache" / "cache.db")
    with db:
        db.execute("INSERT INTO results VALUES ('k', ?, 0, 0)", (json.dumps(layers),))
        db.execute("INSERT INTO results VALUES ('bad', 'not json', 0, 0)")
    db.close()
    code, lines, _ = check(capsys)
    assert code == 1
    assert f"cache record k: layer blob {absent} is missing" in lines
    assert any(line.startswith("cache record bad: cannot be parsed") for line in lines)
    code, _, _ = check(capsys, "--repair")
    assert code == 0
    db = sqlite3.connect(root / "cache" / "cache.db")
    keys = {key for (key,) in db.execute("SELECT key FROM results")}
    db.close()
    assert "k" not in keys and "bad" not in keys and keys


def test_an_unreadable_image_list_is_reported_not_replaced(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / "images.json").write_text('{"version": 1, "images": [')
    code, lines, _ = check(capsys, "--repair")
    assert code == 1
    assert any(line.startswith(f"image {root / 'images.json'}: the image list") for line in lines)
    assert (root / "images.json").read_text() == '{"version": 1, "images": ['


def test_unpacked_layers_deleted_are_fine_a_file_in_their_place_is_not(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    layers = sorted(p for p in (root / "layers").iterdir() if p.is_dir())
    subprocess.run(["rm", "-rf", str(layers[0])], check=True)  # unpacked again when needed
    code, lines, _ = check(capsys)
    assert code == 0, lines
    layers[0].write_text("")
    code, lines, _ = check(capsys)
    assert code == 1 and f"layer {layers[0]}: not a directory" in lines[0]
    code, lines, _ = check(capsys, "--repair")
    assert code == 0 and not layers[0].exists()
    proc = run_cli(root, "run", "--platform", "linux/amd64", "app", "cat", "/file")
    assert proc.stdout == "data\n", proc.stderr


@pytest.fixture
def leftovers(root: Path) -> Iterator[dict[str, Path]]:
    """What a killed build, import, write and lease leave, under a pid that is gone."""
    pid = dead_pid()
    made = {
        "scratch": root / "tmp" / f"step-{pid}-abcd",
        "unpack": root / "layers" / f".tmp-{pid}-abcd",
        "bundle": root / "containers" / "bundles" / f"pb-{pid}-0123456789ab",
        "runc": root / "containers" / "runc" / f"pb-{pid}-0123456789ab",
        "snapshot": root / "snapshots" / "active" / f"{pid}-0123456789ab",
        "images-temp": root / f".images.json.{pid}-abcd1234.tmp",
        "hashes-temp": root / "cache" / f"context-hashes.{pid}.tmp",
        "cache-mount": root / "cache-mounts" / f"{'0' * 32}.tmp-{pid}",
        "lease": root / "leases" / f"1700000000.000000-{pid}-abcd",
        "partial": root / "content" / "ingest" / f"{pid}-0123456789abcdef.partial",
        "not-a-blob": root / "content" / "blobs" / "sha256" / ".junk",
    }
    for name, path in made.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if name in ("scratch", "unpack", "bundle", "runc", "cache-mount"):
            path.mkdir()
            (path / "file").write_text("x")
        elif name != "snapshot":
            path.write_text("x")
    snapshot = made["snapshot"]
    for sub in ("lower", "upper", "work", "merged"):
        (snapshot / sub).mkdir(parents=True)
    syscalls.mount(
        "overlay",
        snapshot / "merged",
        "overlay",
        0,
        f"lowerdir={snapshot / 'lower'},upperdir={snapshot / 'upper'},workdir={snapshot / 'work'}",
    )
    stray = root / "stray"
    stray.mkdir()
    syscalls.mount("tmpfs", stray, "tmpfs", 0, "size=1m")
    made["stray-mount"] = stray
    try:
        yield made
    finally:
        for point in (snapshot / "merged", stray):
            if os.path.ismount(point):
                syscalls.umount(point, syscalls.MNT_DETACH)


def test_leftovers_of_dead_processes_are_found_and_removed(
    root: Path, leftovers: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines, _ = check(capsys)
    assert code == 1
    text = "\n".join(lines)
    for name, path in leftovers.items():
        if name in ("partial", "scratch"):
            continue  # every command (check too) removes these when it opens the store
        assert str(path) in text or path.name in text, name
    assert f"mount {leftovers['stray-mount']}: mounted under the data root" in text
    assert os.path.ismount(leftovers["snapshot"] / "merged")  # nothing changed yet

    code, lines, _ = check(capsys, "--repair")
    assert code == 0, lines
    assert any(line.endswith("unmounted and removed") for line in lines)
    for name, path in leftovers.items():
        if name == "stray-mount":
            assert not os.path.ismount(path)
        else:
            assert not path.exists(), name
    mounts = Path("/proc/self/mountinfo").read_text()
    assert str(root) not in mounts
    code, lines, _ = check(capsys)
    assert code == 0 and problems(lines) == []


def test_live_processes_leftovers_are_not_touched(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = root / "tmp" / f"step-{os.getpid()}-abcd"
    scratch.mkdir(parents=True)
    with ImageStore(root).lease() as lease:
        code, lines, _ = check(capsys, "--repair")
        assert code == 0 and problems(lines) == []
        assert lease.exists() and scratch.exists()


def test_check_is_refused_while_a_build_uses_the_data_root(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Runtime(root).in_use():
        code, _, err = check(capsys, "--repair")
    assert code == 1 and "is using" in err and "nothing was changed" in err


def test_deep_finds_a_half_removed_unpacked_layer(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a prune killed in the middle of deleting a layer directory used to leave: builds
    and runs took it as whole. Only unpacking the blob again can tell."""
    unpacked = max(
        (p for p in (root / "layers").iterdir() if p.is_dir()),
        key=lambda p: sum(1 for _ in p.rglob("*")),
    )
    victims = sorted(p for p in unpacked.rglob("*") if p.is_file() and not p.is_symlink())[:2]
    for victim in victims:
        victim.unlink()
    code, lines, _ = check(capsys)
    assert code == 0, lines  # without --deep only the directory's presence is checked
    code, lines, _ = check(capsys, "--deep")
    assert code == 1
    line = next(line for line in lines if line.startswith(f"layer {unpacked}:"))
    assert "differs from its blob sha256:" in line and "missing" in line
    assert str(victims[0].relative_to(unpacked)) in line
    code, lines, _ = check(capsys, "--deep", "--repair")
    assert code == 0, lines
    assert not unpacked.exists()
    code, lines, _ = check(capsys, "--deep")
    assert code == 0 and problems(lines) == []
