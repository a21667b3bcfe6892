"""Running registry operations side by side: the first failure cancels the rest and is raised
as itself (not wrapped in an ExceptionGroup), so callers and the CLI see one clear error."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable
from typing import Any


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_leaf(exc)
        return exc
    return group


async def run_all(coroutines: Iterable[Coroutine[Any, Any, object]]) -> None:
    """Await every coroutine concurrently (asyncio.TaskGroup), raising the first failure."""
    try:
        async with asyncio.TaskGroup() as group:
            for coroutine in coroutines:
                group.create_task(coroutine)
    except BaseExceptionGroup as failures:
        raise _first_leaf(failures) from None
