"""Structured concurrency helpers: one failure out of a task group, raised as itself.

asyncio.TaskGroup wraps failures in a (possibly nested) BaseExceptionGroup; polybuild raises
one clear error instead, as the CLI renders one PolybuildError. When one task fails the group
cancels the others, so the group may also hold their CancelledErrors: the real error wins.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Iterator
from typing import Any

__all__ = ["first_error", "run_all"]


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first exception in `group` (nested groups flattened, in order) that is not a
    cancellation; when every one is (or it is a lone KeyboardInterrupt), that first one."""
    leaves = list(_leaves(group))
    for exc in leaves:
        if not isinstance(exc, asyncio.CancelledError):
            return exc
    return leaves[0] if leaves else group


async def run_all(coroutines: Iterable[Coroutine[Any, Any, object]]) -> None:
    """Await every coroutine concurrently (asyncio.TaskGroup), raising the first failure."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as failures:
        raise first_error(failures) from None
