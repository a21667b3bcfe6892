"""The emulation advisor on synthetic build records: native twins, estimates, the steps it never
flags, and the order and JSON form of its advice."""

from __future__ import annotations

import json

import pytest

from polybuild.history.record import BuildRecord, StepRecord, new_ref
from polybuild.insight import ESTIMATE, FIX, HISTORY, TWIN, Advice, advise

DOCKERFILE = """\
FROM alpine AS build
WORKDIR /src
RUN ./configure
RUN make
FROM alpine
COPY --from=build /src/app /app
RUN make
"""
AMD, ARM = "linux/amd64", "linux/arm64"


def step(
    name: str, seconds: float, *, platform: str = ARM, emulated: bool = True, cached: bool = False
) -> StepRecord:
    return StepRecord(
        vertex=f"sha256:{abs(hash((name, platform))):064x}"[:71],
        name=name,
        started=100.0,
        completed=100.0 + seconds,
        platform=platform,
        cached=cached,
        emulated=emulated,
    )


def record(*steps: StepRecord) -> BuildRecord:
    return BuildRecord(
        ref=new_ref(),
        name="test",
        builder="default",
        started=100.0,
        completed=200.0,
        status="completed",
        platforms=(AMD, ARM),
        steps=steps,
    )


def native(name: str, seconds: float) -> StepRecord:
    return step(name.replace(ARM, AMD), seconds, platform=AMD, emulated=False)


def test_a_native_twin_gives_the_ratio_and_the_line() -> None:
    name = f"[{ARM} build 4/4] RUN make"
    (advice,) = advise(record(step(name, 41.2), native(name, 4.9)), DOCKERFILE)
    assert (advice.line, advice.stage, advice.stage_line) == (4, "build", 1)
    assert (advice.platform, advice.basis) == (ARM, TWIN)
    assert advice.emulated_seconds == pytest.approx(41.2)
    assert advice.native_seconds == pytest.approx(4.9)
    assert advice.ratio == pytest.approx(41.2 / 4.9)
    assert advice.message == (
        f"Dockerfile:4 RUN make  linux/arm64  41.2 s emulated vs 4.9 s native (8.4x): {FIX}"
        " (Dockerfile:1)"
    )


def test_identical_instructions_map_to_their_own_lines() -> None:
    # `RUN make` twice in the file: the stage and the step's number tell them apart
    second = f"[{ARM} stage-1 3/3] RUN make"
    first = f"[{ARM} build 4/4] RUN make"
    advice = advise(
        record(step(first, 10), native(first, 1), step(second, 30), native(second, 2)),
        DOCKERFILE,
    )
    assert [(a.line, a.stage) for a in advice] == [(7, "stage-1"), (4, "build")]


def test_without_a_twin_the_measured_slowdown_estimates() -> None:
    name = f"[{ARM} build 3/4] RUN ./configure"
    (advice,) = advise(record(step(name, 20.0)), DOCKERFILE, factors={ARM: 8.0})
    assert (advice.line, advice.basis) == (3, ESTIMATE)
    assert advice.native_seconds == pytest.approx(2.5)
    assert "~2.5 s native (8.0x, estimated" in advice.message
    # no factor for the platform: nothing to compare with, no advice
    assert advise(record(step(name, 20.0)), DOCKERFILE, factors={"linux/riscv64": 8.0}) == ()


def test_a_variant_falls_back_to_its_architecture_factor() -> None:
    name = "[linux/arm/v7 build 3/4] RUN ./configure"
    armv7 = step(name, 12.0, platform="linux/arm/v7")
    (advice,) = advise(record(armv7), DOCKERFILE, factors={"linux/arm": 6.0})
    assert advice.native_seconds == pytest.approx(2.0)


def test_an_earlier_build_supplies_the_twin() -> None:
    name = f"[{ARM} build 4/4] RUN make"
    earlier = record(native(name, 3.0))
    (advice,) = advise(record(step(name, 30.0)), DOCKERFILE, history=[earlier])
    assert (advice.basis, advice.native_seconds) == (HISTORY, 3.0)
    assert "from an earlier build" in advice.message


def test_the_twin_wins_over_an_estimate() -> None:
    name = f"[{ARM} build 4/4] RUN make"
    (advice,) = advise(record(step(name, 30.0), native(name, 6.0)), DOCKERFILE, factors={ARM: 10})
    assert (advice.basis, advice.native_seconds) == (TWIN, 6.0)


@pytest.mark.parametrize(
    "platform_flag",
    [
        "$BUILDPLATFORM",
        "${BUILDPLATFORM}",
        "$BUILDOS/$BUILDARCH",
        "$HOSTPLAT",  # a global ARG whose default is the build platform
        "linux/arm64",  # pinned on purpose: not per target
    ],
)
def test_stages_on_the_build_platform_are_never_flagged(platform_flag: str) -> None:
    dockerfile = (
        f"ARG HOSTPLAT=$BUILDPLATFORM\nFROM --platform={platform_flag} alpine AS b\nRUN make\n"
    )
    name = f"[{ARM} b 2/2] RUN make"
    assert advise(record(step(name, 40), native(name, 4)), dockerfile, factors={ARM: 9}) == ()


def test_a_stage_from_a_build_platform_stage_is_not_flagged() -> None:
    dockerfile = "FROM --platform=$BUILDPLATFORM alpine AS b\nFROM b AS c\nRUN make\n"
    name = f"[{ARM} c 1/1] RUN make"
    assert advise(record(step(name, 40), native(name, 4)), dockerfile) == ()


def test_a_target_platform_stage_is_flagged() -> None:
    dockerfile = "FROM --platform=$TARGETPLATFORM alpine AS b\nRUN make\n"
    name = f"[{ARM} b 2/2] RUN make"
    (advice,) = advise(record(step(name, 40), native(name, 4)), dockerfile)
    assert advice.line == 2


def test_cached_short_native_and_failed_steps_are_ignored() -> None:
    name = f"[{ARM} build 4/4] RUN make"
    twin = native(name, 1.0)
    assert advise(record(step(name, 40, cached=True), twin), DOCKERFILE) == ()
    assert advise(record(step(name, 0.5), native(name, 0.1)), DOCKERFILE) == ()
    assert advise(record(step(name, 40, emulated=False), twin), DOCKERFILE) == ()
    failed = StepRecord("v", name, 100.0, 140.0, ARM, emulated=True, error="exit code: 2")
    assert advise(record(failed, twin), DOCKERFILE) == ()
    unfinished = StepRecord("v", name, 100.0, None, ARM, emulated=True)
    assert advise(record(unfinished, twin), DOCKERFILE) == ()
    # a cached twin measured nothing
    assert (
        advise(
            record(step(name, 40), step(name, 1, platform=AMD, cached=True, emulated=False)),
            DOCKERFILE,
        )
        == ()
    )


def test_a_twin_slower_than_the_emulated_step_gives_no_advice() -> None:
    name = f"[{ARM} build 4/4] RUN make"
    assert advise(record(step(name, 5), native(name, 6)), DOCKERFILE) == ()


def test_steps_that_are_not_runs_of_the_file_are_ignored() -> None:
    copy = f"[{ARM} stage-1 2/3] COPY --from=build /src/app /app"
    other = f"[{ARM} build 4/4] RUN something else entirely"
    cross = f"[{AMD}->arm64 build 4/4] RUN make"
    steps = [step(n, 40) for n in (copy, "[internal] load build definition", cross)]
    assert advise(record(*steps, *(native(n, 1) for n in (copy, cross))), DOCKERFILE) == ()
    # numbers that do not fit the file (another Dockerfile) and text that matches no RUN
    assert advise(record(step(other.replace("4/4", "9/9"), 40)), DOCKERFILE, factors={ARM: 5}) == ()


def test_numbers_that_do_not_fit_fall_back_to_the_unique_text() -> None:
    name = f"[{ARM} build 7/9] RUN ./configure"
    (advice,) = advise(record(step(name, 40)), DOCKERFILE, factors={ARM: 4})
    assert advice.line == 3


def test_the_biggest_saving_comes_first() -> None:
    configure, make = f"[{ARM} build 3/4] RUN ./configure", f"[{ARM} build 4/4] RUN make"
    riscv = "linux/riscv64"
    steps = [
        step(configure, 10),  # saves 9
        native(configure, 1),
        step(make, 20),  # saves 15
        native(make, 5),
        step(make.replace(ARM, riscv), 60, platform=riscv),  # saves 55
    ]
    advice = advise(record(*steps), DOCKERFILE)
    assert [(a.line, a.platform, a.saved_seconds) for a in advice] == [
        (4, riscv, 55.0),
        (4, ARM, 15.0),
        (3, ARM, 9.0),
    ]


def test_json_shape() -> None:
    name = f"[{ARM} build 4/4] RUN make"
    (advice,) = advise(
        record(step(name, 41.2), native(name, 4.9)), DOCKERFILE, filename="app.Dockerfile"
    )
    data = json.loads(json.dumps(advice.to_json()))
    assert data == {
        "file": "app.Dockerfile",
        "line": 4,
        "endLine": 4,
        "stage": "build",
        "stageLine": 1,
        "instruction": "RUN make",
        "platform": ARM,
        "emulatedSeconds": 41.2,
        "nativeSeconds": 4.9,
        "ratio": 8.41,
        "savedSeconds": 36.3,
        "basis": TWIN,
        "message": advice.message,
    }
    assert data["message"].startswith("app.Dockerfile:4 RUN make  linux/arm64  41.2 s emulated")


def test_long_instructions_are_shortened_in_the_message_only() -> None:
    text = "RUN " + "x" * 100
    advice = Advice("Dockerfile", 2, 2, "b", 1, text, ARM, 10.0, 1.0, TWIN)
    assert advice.instruction == text
    assert "x" * 100 not in advice.message and "..." in advice.message


def test_a_variant_not_measured_takes_another_variant_of_its_architecture() -> None:
    name = "[linux/arm/v6 build 3/4] RUN ./configure"
    armv6 = step(name, 12.0, platform="linux/arm/v6")
    (advice,) = advise(record(armv6), DOCKERFILE, factors={"linux/arm/v7": 12.0, "linux/arm64": 2})
    assert advice.basis == ESTIMATE and advice.native_seconds == pytest.approx(1.0)
    assert advise(record(armv6), DOCKERFILE, factors={"linux/arm64": 6.0}) == ()
