"""`polybuild binfmt --bench`: QEMU's slow-down on this machine, measured by running one fixed
CPU workload natively and under each emulator binfmt_misc runs, stored as factors for the
emulation advisor (insight/factors.py).

The workload is busybox awk summing `i*i % 7` for i below 500,000 (about 0.3-0.5 s natively);
the same awk process runs it `runs` times in one container of the image's variant for the
platform and reads /proc/uptime around each loop, so only the loop is timed: neither the
container's start, nor QEMU's, nor the image's unpacking dilutes the factor (the clock ticks
in 10 ms). A platform's time is the median of its runs; its factor is that time over the
native platform's. Each run's sum is checked, so an emulator that computes wrongly is not
measured. A platform whose variant the image lacks, or that fails to run, is reported and
skipped; the bench fails only when the native platform or every emulated one fails.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from polybuild.binfmt.probe import ProbeResult, ProbeStatus, cached_probe
from polybuild.errors import PolybuildError, RegistryError
from polybuild.executor import Process
from polybuild.image.select import Selected, select_manifest
from polybuild.insight.factors import MAX_FACTOR, save_factors
from polybuild.platforms import default_platform, format_platform, parse
from polybuild.runtime import Runtime

DEFAULT_IMAGE = "busybox"
DEFAULT_RUNS = 3
ITERATIONS = 500_000
WORKLOAD = (
    f"busybox awk: the sum of i*i%7 for i < {ITERATIONS}, timed inside the container"
    " (/proc/uptime around the loop), median of the runs"
)
# Seconds one container may take: the slowest emulators run the loop ~30 times slower.
_TIMEOUT_PER_RUN = 120.0
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_PROGRAM = """\
function now(line, fields) {
    getline line < "/proc/uptime"; close("/proc/uptime")
    split(line, fields, " "); return fields[1] + 0
}
BEGIN {
    for (r = 0; r < RUNS; r++) {
        start = now(); sum = 0
        for (i = 0; i < N; i++) sum += i * i % 7
        printf "%.2f %d\\n", now() - start, sum
    }
}
"""

Report = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Measured:
    """One platform's timed runs of the workload (seconds each)."""

    platform: str
    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


@dataclass(frozen=True, slots=True)
class Skipped:
    """A platform that could not be measured, and why."""

    platform: str
    reason: str


@dataclass(frozen=True, slots=True)
class BenchResult:
    """What a bench measured: the native platform first, then each emulated one."""

    native: str
    measured: tuple[Measured, ...]
    skipped: tuple[Skipped, ...]
    path: Path | None = None  # where the factors were stored

    @property
    def factors(self) -> dict[str, float]:
        """Platform -> median seconds over the native median (native 1.0), 2 decimals."""
        base = max(next(m.median for m in self.measured if m.platform == self.native), 0.01)
        return {
            m.platform: min(round(max(m.median, 0.01) / base, 2), MAX_FACTOR) for m in self.measured
        }

    @property
    def seconds(self) -> dict[str, float]:
        """Platform -> median seconds, 2 decimals (the clock's 10 ms)."""
        return {m.platform: round(max(m.median, 0.01), 2) for m in self.measured}


def expected_sum(iterations: int = ITERATIONS) -> int:
    """The workload's result: i*i % 7 repeats every 7 values of i."""
    period = [i * i % 7 for i in range(7)]
    whole, rest = divmod(iterations, 7)
    return whole * sum(period) + sum(period[:rest])


def bench_platforms(probes: Sequence[ProbeResult], native: str) -> tuple[str, ...]:
    """The native platform, then the first platform of every architecture QEMU runs here."""
    emulated = [
        format_platform(probe.platforms[0])
        for probe in probes
        if probe.status is ProbeStatus.EMULATED and probe.platforms
    ]
    return (native, *(p for p in emulated if p != native))


def workload_args(runs: int, iterations: int = ITERATIONS) -> tuple[str, ...]:
    return ("awk", "-v", f"RUNS={runs}", "-v", f"N={iterations}", _PROGRAM)


def parse_output(text: str, runs: int, iterations: int = ITERATIONS) -> tuple[float, ...]:
    """Each run's seconds from the workload's output; ValueError unless there are `runs`
    lines of `SECONDS SUM` with the right sum."""
    lines = text.split()
    if len(lines) != 2 * runs:
        raise ValueError(f"expected {runs} timings, got {text.strip()[:200]!r}")
    want = expected_sum(iterations)
    seconds: list[float] = []
    for value, total in zip(lines[::2], lines[1::2], strict=True):
        if int(total) != want:
            raise ValueError(f"the workload computed {total}, not {want}: the emulator is broken")
        number = float(value)
        if not 0.0 <= number < 86400.0:
            raise ValueError(f"not a duration: {value!r}")
        seconds.append(number)
    return tuple(seconds)


def format_table(result: BenchResult) -> list[str]:
    """PLATFORM, SECONDS (the median), FACTOR: one line per measured platform."""
    factors, seconds = result.factors, result.seconds
    width = max([len("PLATFORM"), *(len(p) for p in factors)]) + 2
    lines = [f"{'PLATFORM':<{width}}{'SECONDS':>9}{'FACTOR':>9}"]
    for platform, factor in factors.items():
        note = "  (native)" if platform == result.native else ""
        lines.append(f"{platform:<{width}}{seconds[platform]:>9.2f}{factor:>9.2f}{note}")
    return lines


async def _variant(runtime: Runtime, image: str, platform: str) -> Selected:
    """The image's variant for `platform`: pulled, or the local store's when the registry
    cannot be reached. Its architecture must be the platform's (containerd would give an
    arm/v7 variant for linux/arm64, which another emulator runs)."""
    from polybuild.registry import resolve_base_image

    wanted = parse(platform)
    try:
        selected = await resolve_base_image(runtime.store, image, wanted)
    except RegistryError as exc:
        try:
            record = runtime.store.resolve(image)
            selected = select_manifest(runtime.store.content, record.target, wanted)
        except PolybuildError:
            raise exc from None
    found = selected.platform
    if (found.os, found.architecture) != (wanted.os, wanted.architecture):
        raise PolybuildError(f"{image} has no variant for {platform}")
    return selected


async def _variants(
    runtime: Runtime, image: str, platforms: Sequence[str]
) -> list[Selected | BaseException]:
    return await asyncio.gather(
        *(_variant(runtime, image, platform) for platform in platforms), return_exceptions=True
    )


def _measure(runtime: Runtime, selected: Selected, platform: str, runs: int) -> Measured:
    process = Process(
        args=workload_args(runs),
        env=(_PATH,),
        network="none",
        platform=selected.config.value.platform,
        timeout=_TIMEOUT_PER_RUN * runs,
    )
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        status = runtime.run(selected.manifest, selected.config, process, stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        text = out.read(64 * 1024).decode(errors="replace")
        problem = err.read(64 * 1024).decode(errors="replace").strip()
    if status.timed_out:
        raise PolybuildError(f"the workload did not finish in {process.timeout:.0f} s")
    if status.code:
        last = problem.splitlines()[-1] if problem else ""
        raise PolybuildError(f"the workload exited with code {status.code}: {last}".rstrip(": "))
    try:
        return Measured(platform, parse_output(text, runs))
    except ValueError as exc:
        raise PolybuildError(str(exc)) from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def run_bench(
    image: str = DEFAULT_IMAGE,
    runs: int = DEFAULT_RUNS,
    *,
    runtime: Runtime | None = None,
    report: Report = lambda message: None,
) -> BenchResult:
    """Measure and store QEMU's slow-down factors in the data root; `report` hears about each
    platform as it goes (and why one is skipped)."""
    if runs < 1:
        raise PolybuildError(f"the bench needs at least one run, not {runs}")
    runtime = runtime or Runtime()
    native = format_platform(default_platform())
    platforms = bench_platforms(cached_probe(), native)
    report(f"pulling {image} for {', '.join(platforms)}")
    variants = asyncio.run(_variants(runtime, image, platforms))
    measured: list[Measured] = []
    skipped: list[Skipped] = []
    for platform, variant in zip(platforms, variants, strict=True):
        if isinstance(variant, BaseException):
            if not isinstance(variant, PolybuildError):
                raise variant
            skipped.append(Skipped(platform, _reason(variant)))
        else:
            report(f"{platform}: running the workload {runs} time(s)")
            try:
                measured.append(_measure(runtime, variant, platform, runs))
            except PolybuildError as exc:
                skipped.append(Skipped(platform, _reason(exc)))
        if skipped and skipped[-1].platform == platform:
            report(f"{platform}: skipped: {skipped[-1].reason}")
        if platform == native and not measured:
            raise PolybuildError(
                f"the workload could not be measured natively ({native}): {skipped[-1].reason}",
                hint="--image names an image with busybox's awk for this platform",
            )
    if len(measured) < 2:
        raise PolybuildError(
            "no emulated platform could be measured",
            hint="install emulators with `polybuild binfmt --install all`; --image names an "
            "image with busybox's awk for the emulated platforms",
        )
    result = BenchResult(native, tuple(measured), tuple(skipped))
    path = save_factors(
        runtime.root,
        result.factors,
        workload=f"{WORKLOAD}; image {image}, {runs} run(s)",
        native=native,
        measured=time.time(),
        seconds=result.seconds,
    )
    return BenchResult(native, result.measured, result.skipped, path)


__all__ = [
    "DEFAULT_IMAGE",
    "DEFAULT_RUNS",
    "WORKLOAD",
    "BenchResult",
    "Measured",
    "Skipped",
    "format_table",
    "parse_output",
    "run_bench",
]
