"""first_error and run_all: one failure out of a task group, the real error before cancellations."""

from __future__ import annotations

import asyncio

import pytest

from polybuild.tasks import first_error, run_all


def test_a_real_error_wins_over_cancellations_in_any_nesting() -> None:
    boom = ValueError("boom")
    group = BaseExceptionGroup(
        "outer",
        [
            BaseExceptionGroup("inner", [asyncio.CancelledError()]),
            asyncio.CancelledError(),
            BaseExceptionGroup("second", [boom, RuntimeError("later")]),
        ],
    )
    assert first_error(group) is boom


def test_lone_cancellation_and_interrupt_stay_themselves() -> None:
    cancelled = asyncio.CancelledError()
    assert first_error(BaseExceptionGroup("g", [cancelled, asyncio.CancelledError()])) is cancelled
    interrupt = KeyboardInterrupt()
    assert first_error(BaseExceptionGroup("g", [interrupt])) is interrupt


def test_run_all_raises_the_first_failure_itself() -> None:
    done: list[str] = []

    async def fail() -> None:
        await asyncio.sleep(0)
        raise ValueError("boom")

    async def slow() -> None:
        await asyncio.sleep(10)
        done.append("slow")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(run_all([slow(), fail()]))
    assert done == []
