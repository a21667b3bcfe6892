"""`polybuild binfmt --bench`: QEMU's slow-down measured on this machine, from the pure parts
(which platforms, the workload's output, the table) to a real bench of busybox images pulled
from a local registry."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from polybuild import qemu_bench
from polybuild.binfmt.probe import ProbeResult, ProbeStatus
from polybuild.cli import binfmt as binfmt_cli
from polybuild.errors import PolybuildError
from polybuild.insight.factors import FACTORS_PATH, load_factors
from polybuild.platforms import Platform
from polybuild.qemu_bench import (
    BenchResult,
    Measured,
    bench_platforms,
    expected_sum,
    format_table,
    parse_output,
    resolve_variants,
)
from polybuild.runtime import Runtime
from tests.conftest import import_busybox, require_platforms, require_root, run_cli
from tests.registry.conftest import Registry, registry  # noqa: F401 (fixture)

SUM = expected_sum()


def probe(arch: str, status: ProbeStatus, *platforms: Platform) -> ProbeResult:
    return ProbeResult(arch, platforms or (Platform("linux", arch),), status)


def test_the_expected_sum_is_the_loop_s() -> None:
    for n in (0, 1, 6, 7, 8, 1000, 12345):
        assert expected_sum(n) == sum(i * i % 7 for i in range(n))


def test_the_native_platform_then_each_emulated_one() -> None:
    probes = [
        probe(
            "amd64",
            ProbeStatus.NATIVE,
            Platform("linux", "amd64"),
            Platform("linux", "amd64", "v2"),
        ),
        probe("arm64", ProbeStatus.EMULATED),
        probe("386", ProbeStatus.NATIVE),  # not QEMU: not benched
        probe("riscv64", ProbeStatus.NO_HANDLER),
        probe("s390x", ProbeStatus.NO_FIX_BINARY),
        probe(
            "arm",
            ProbeStatus.EMULATED,
            Platform("linux", "arm", "v7"),
            Platform("linux", "arm", "v6"),
        ),
    ]
    assert bench_platforms(probes, "linux/amd64") == ("linux/amd64", "linux/arm64", "linux/arm/v7")


def test_the_workload_s_output_is_parsed_and_checked() -> None:
    assert parse_output(f"0.41 {SUM}\n0.39 {SUM}\n0.40 {SUM}\n", 3) == (0.41, 0.39, 0.40)
    with pytest.raises(ValueError, match="expected 3 timings"):
        parse_output(f"0.41 {SUM}\n", 3)
    with pytest.raises(ValueError, match="emulator is broken"):
        parse_output(f"0.41 {SUM + 1}\n", 1)
    with pytest.raises(ValueError, match="not a duration"):
        parse_output(f"-1 {SUM}\n", 1)
    with pytest.raises(ValueError):
        parse_output(f"nan? {SUM}\n", 1)
    with pytest.raises(ValueError):
        parse_output("awk: not found\n", 1)


def test_factors_are_medians_over_the_native_median() -> None:
    result = BenchResult(
        "linux/amd64",
        (
            Measured("linux/amd64", (0.40, 0.50, 0.38)),
            Measured("linux/arm64", (6.0, 5.6, 9.0)),
        ),
        (),
    )
    assert result.factors == {"linux/amd64": 1.0, "linux/arm64": 15.0}
    assert result.seconds == {"linux/amd64": 0.4, "linux/arm64": 6.0}
    assert format_table(result) == [
        "PLATFORM       SECONDS   FACTOR",
        "linux/amd64       0.40     1.00  (native)",
        "linux/arm64       6.00    15.00",
    ]


def test_the_cli_defaults_are_the_bench_s() -> None:
    assert binfmt_cli.DEFAULT_IMAGE == qemu_bench.DEFAULT_IMAGE
    assert binfmt_cli.DEFAULT_RUNS == qemu_bench.DEFAULT_RUNS


@pytest.mark.parametrize("args", [["--image", "alpine"], ["--bench-runs", "5"]])
def test_bench_options_need_bench(args: list[str]) -> None:
    result = CliRunner().invoke(binfmt_cli.command, args)
    assert result.exit_code != 0
    assert "options of --bench" in str(result.exception)


@pytest.fixture
def hanging_up() -> Iterator[tuple[int, list[float]]]:
    """A loopback port that accepts connections and closes them at once (no registry
    answers), and the moments it accepted one."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    accepted: list[float] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            accepted.append(time.monotonic())
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    done.set()
    thread.join(timeout=5)
    server.close()


def test_an_unreachable_registry_is_asked_once_then_the_local_store(
    tmp_path: Path, hanging_up: tuple[int, list[float]]
) -> None:
    port, accepted = hanging_up
    name = f"127.0.0.1:{port}/bench/busybox:latest"
    import_busybox(tmp_path / "root", ("amd64", "arm64"), name=name)
    platforms = ["linux/amd64", "linux/arm64", "linux/riscv64", "linux/s390x", "linux/ppc64le"]
    heard: list[str] = []
    started = time.monotonic()
    found = resolve_variants(Runtime(tmp_path / "root"), name, platforms, heard.append)
    took = time.monotonic() - started
    assert 1 <= len(accepted) <= 2, f"{len(accepted)} connections: retried"  # https, http
    assert took < 5.0
    assert [f.platform.architecture for f in found if not isinstance(f, PolybuildError)] == [
        "amd64", "arm64"
    ]  # fmt: skip
    for platform, outcome in zip(platforms[2:], found[2:], strict=True):
        assert isinstance(outcome, PolybuildError)
        assert f"has no variant for {platform}" in str(outcome)
    assert len(heard) == 1 and "using the local store's image" in heard[0], heard
    assert not any("pulling" in line for line in heard)


def test_an_unreachable_registry_and_no_local_image_is_the_registry_s_error(
    tmp_path: Path, hanging_up: tuple[int, list[float]]
) -> None:
    port, accepted = hanging_up
    name = f"127.0.0.1:{port}/bench/busybox:latest"
    with pytest.raises(PolybuildError, match=f"127.0.0.1:{port}"):
        resolve_variants(Runtime(tmp_path / "root"), name, ["linux/amd64", "linux/arm64"])
    assert 1 <= len(accepted) <= 2


# A real bench: busybox images for three platforms pushed to a local registry.

TABLE_ROW = re.compile(r"^(\S+)\s+(\d+\.\d\d)\s+(\d+\.\d\d)(  \(native\))?$")


@pytest.fixture(scope="module")
def pushed(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:  # noqa: F811
    require_root()
    seeder = tmp_path_factory.mktemp("bench-seed") / "root"
    name = f"{registry.host}/bench/busybox:latest"
    import_busybox(seeder, ("amd64", "arm64", "armhf"), name=name)
    done = run_cli(seeder, "push", name)
    assert done.returncode == 0, done.stderr
    yield name


@pytest.mark.root
@pytest.mark.qemu
def test_bench_measures_and_stores_qemu_s_slow_down(pushed: str, tmp_path: Path) -> None:
    require_platforms("linux/amd64", "linux/arm64", "linux/arm/v7")
    root = tmp_path / "root"
    done = run_cli(root, "binfmt", "--bench", "--image", pushed, "--bench-runs", "1", timeout=120)
    assert done.returncode == 0, done.stderr

    path = root / FACTORS_PATH
    factors = load_factors(root)
    stored = json.loads(path.read_text())
    assert stored["native"] == "linux/amd64"
    assert factors["linux/amd64"] == 1.0
    assert set(factors) == {"linux/amd64", "linux/arm64", "linux/arm/v7"}
    assert factors["linux/arm64"] > 1.5  # QEMU is slower
    assert factors["linux/arm/v7"] > 1.5
    assert 0.05 < stored["seconds"]["linux/amd64"] < 5.0

    rows = [TABLE_ROW.match(line) for line in done.stdout.splitlines()[1:]]
    assert done.stdout.splitlines()[0].split() == ["PLATFORM", "SECONDS", "FACTOR"]
    assert all(rows), done.stdout
    table = {m[1]: (float(m[2]), float(m[3])) for m in rows if m}
    assert table == {p: (stored["seconds"][p], factors[p]) for p in factors}
    assert [m[1] for m in rows if m and m[4]] == ["linux/amd64"]

    # every other emulated platform of this host is reported as skipped: busybox lacks it
    emulated = {"linux/riscv64", "linux/ppc64le", "linux/s390x"} & set(
        json.loads(run_cli(root, "binfmt").stdout)["supported"]
    )
    for platform in emulated:
        assert f"{platform}: skipped: " in done.stderr, done.stderr
    assert f"factors stored in {path}" in done.stderr


@pytest.mark.root
@pytest.mark.qemu
def test_bench_without_a_native_variant_fails_and_stores_nothing(
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    require_root()
    seeder = tmp_path / "seed"
    name = f"{registry.host}/bench/arm-only:latest"
    import_busybox(seeder, ("arm64",), name=name)
    assert run_cli(seeder, "push", name).returncode == 0
    root = tmp_path / "root"
    done = run_cli(root, "binfmt", "--bench", "--image", name, timeout=120)
    assert done.returncode != 0
    assert "could not be measured natively (linux/amd64)" in done.stderr
    assert "has no variant for linux/amd64" in done.stderr
    assert not (root / FACTORS_PATH).exists()


@pytest.mark.root
@pytest.mark.qemu
def test_bench_uses_the_local_store_when_the_registry_is_unreachable(tmp_path: Path) -> None:
    require_root()
    require_platforms("linux/amd64", "linux/arm64")
    root = tmp_path / "root"
    name = "127.0.0.1:1/bench/busybox:latest"  # nothing listens on port 1
    import_busybox(root, ("amd64", "arm64"), name=name)
    done = run_cli(root, "binfmt", "--bench", "--image", name, "--bench-runs", "1", timeout=120)
    assert done.returncode == 0, done.stderr
    assert set(load_factors(root)) == {"linux/amd64", "linux/arm64"}
    assert load_factors(root)["linux/arm64"] > 1.5
