"""`build --check-reproducible` on this machine: each platform built twice (the second time
without the cache) and compared before any output is written; a difference fails the
build (exit code 14) naming the first differing file, and SOURCE_DATE_EPOCH is required."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import import_busybox, require_root, run_cli

EPOCH = {"SOURCE_DATE_EPOCH": "1700000000"}


def setup(tmp_path: Path, dockerfile: str) -> tuple[Path, Path]:
    require_root()
    root = tmp_path / "root"
    import_busybox(root, ("amd64",))
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "a.txt").write_text("a\n")
    return root, ctx


def test_a_reproducible_build_passes_and_writes_its_output(tmp_path: Path) -> None:
    root, ctx = setup(tmp_path, "FROM busybox\nCOPY a.txt /\nRUN echo hi > /hi\n")
    out = tmp_path / "out.tar"
    args = ("build", "--check-reproducible", "--progress", "plain", "--platform", "linux/amd64")
    done = run_cli(root, *args, "-o", f"type=oci,dest={out}", str(ctx), env=EPOCH)
    assert done.returncode == 0, done.stderr
    assert "[check] [3/3] RUN echo hi > /hi" in done.stderr  # really built again
    line = next(x for x in done.stderr.splitlines() if x.startswith("reproducible: "))
    assert line.startswith(
        "reproducible: linux/amd64 built twice on this machine (the second time without its "
        "cache): sha256:"
    )
    assert out.is_file()


def test_a_build_that_differs_fails_naming_the_file_and_writes_nothing(tmp_path: Path) -> None:
    dockerfile = "FROM busybox\nCOPY a.txt /\nRUN head -c 8 /dev/urandom | od -x > /random\n"
    root, ctx = setup(tmp_path, dockerfile)
    out = tmp_path / "out.tar"
    done = run_cli(root, "build", "--check-reproducible", "--progress", "quiet",
                   "-o", f"type=oci,dest={out}", str(ctx), env=EPOCH)  # fmt: skip
    assert done.returncode == 1, done.stderr  # a failed build: buildx's 1
    assert "ERROR: two builds of the same platform differ:" in done.stderr
    assert "  layers[2]: diff-id sha256:" in done.stderr
    assert "    random: content differs from byte " in done.stderr
    assert "(built on this machine, then on this machine)" in done.stderr
    assert not out.exists()


def test_the_check_needs_source_date_epoch(tmp_path: Path) -> None:
    root, ctx = setup(tmp_path, "FROM busybox\n")
    done = run_cli(root, "build", "--check-reproducible", str(ctx), env={"SOURCE_DATE_EPOCH": ""})
    assert done.returncode == 2
    assert "--check-reproducible needs SOURCE_DATE_EPOCH" in done.stderr
