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

The image's index is fetched once, with one attempt: the platforms it lacks are skipped
without a pull, the others pulled; when its registry cannot be reached (or has no such
image) the local store's image of that name is used as it is, with no further attempt.
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
from polybuild.errors import PolybuildError
from polybuild.executor import Process
from polybuild.image import mediatypes as mt
from polybuild.image.descriptor import Descriptor
from polybuild.image.manifest import Index, Manifest, Stored, is_attestation
from polybuild.image.select import Selected, select_manifest
from polybuild.insight.factors import MAX_FACTOR, save_factors
from polybuild.platforms import Platform, default_platform, format_platform, only, parse
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


def _has(listed: Sequence[Platform], platform: str) -> bool:
    """Whether an image listing `listed` has a variant for `platform` of its architecture
    (containerd would give an arm/v7 variant for linux/arm64, which another emulator runs)."""
    wanted = parse(platform)
    matcher = only(wanted)
    return any(
        (p.os, p.architecture) == (wanted.os, wanted.architecture) and matcher.rank(p) is not None
        for p in listed
    )


def _listed(top: Stored[Manifest] | Stored[Index]) -> tuple[Platform, ...] | None:
    """The platforms an index lists; None when it cannot say (one image manifest, or an
    entry without its platform): then every platform is pulled and checked."""
    if not isinstance(top.value, Index):
        return None
    entries = [
        e for e in top.value.manifests if mt.is_manifest(e.media_type) and not is_attestation(e)
    ]
    if any(e.platform is None for e in entries):
        return None
    return tuple(e.platform for e in entries if e.platform is not None)


async def _index(image: str) -> Stored[Manifest] | Stored[Index]:
    """The image's index (or manifest) from its registry, one attempt only."""
    from polybuild.image.reference import parse as parse_reference
    from polybuild.registry.client import RegistryClient
    from polybuild.registry.retry import RetryPolicy

    async with RegistryClient(retry=RetryPolicy(attempts=1)) as client:
        return await client.get_manifest(parse_reference(image))


async def _pull(runtime: Runtime, image: str, platform: str) -> Selected:
    """The image's variant for `platform`, pulled (its architecture checked)."""
    from polybuild.registry import resolve_base_image

    return _checked(
        await resolve_base_image(runtime.store, image, parse(platform)), image, platform
    )


def _checked(selected: Selected, image: str, platform: str) -> Selected:
    found, wanted = selected.platform, parse(platform)
    if (found.os, found.architecture) != (wanted.os, wanted.architecture):
        raise PolybuildError(f"{image} has no variant for {platform}")
    return selected


def _local(runtime: Runtime, target: Descriptor, image: str, platform: str) -> Selected:
    if not _has(runtime.store.platforms(target), platform):
        raise PolybuildError(f"{image} has no variant for {platform} (in the local store)")
    return _checked(
        select_manifest(runtime.store.content, target, parse(platform)), image, platform
    )


def resolve_variants(
    runtime: Runtime, image: str, platforms: Sequence[str], report: Report = lambda m: None
) -> list[Selected | PolybuildError]:
    """Each platform's variant of `image`, or why there is none: the index is fetched once
    (one attempt); platforms it lacks are not pulled. When the registry cannot give it, the
    local store's image of that name is used, else the registry's error is raised."""
    try:
        top = asyncio.run(_index(image))
    except PolybuildError as exc:
        try:
            record = runtime.store.resolve(image)
        except PolybuildError:
            raise exc from None
        report(f"{image}: {_reason(exc)}; using the local store's image")
        found: list[Selected | PolybuildError] = []
        for platform in platforms:
            try:
                found.append(_local(runtime, record.target, image, platform))
            except PolybuildError as missing:
                found.append(missing)
        return found
    listed = _listed(top)
    present = [p for p in platforms if listed is None or _has(listed, p)]
    if present:
        report(f"pulling {image} for {', '.join(present)}")
    pulled = iter(asyncio.run(_pulls(runtime, image, present)))
    have = ", ".join(sorted({format_platform(p) for p in listed or ()}))
    return [
        next(pulled)
        if p in present
        else PolybuildError(f"{image} has no variant for {p} (it has {have})")
        for p in platforms
    ]


async def _pulls(
    runtime: Runtime, image: str, platforms: Sequence[str]
) -> list[Selected | PolybuildError]:
    done = await asyncio.gather(
        *(_pull(runtime, image, platform) for platform in platforms), return_exceptions=True
    )
    for outcome in done:
        if isinstance(outcome, BaseException) and not isinstance(outcome, PolybuildError):
            raise outcome
    return [o for o in done if not isinstance(o, BaseException) or isinstance(o, PolybuildError)]


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
    variants = resolve_variants(runtime, image, platforms, report)
    measured: list[Measured] = []
    skipped: list[Skipped] = []
    for platform, variant in zip(platforms, variants, strict=True):
        if isinstance(variant, PolybuildError):
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
    "resolve_variants",
    "run_bench",
]
