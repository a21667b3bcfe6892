"""What a pull reports as it goes (each layer blob fetched, each token fetched with the user's
credentials) to the observer the caller set for its context, as BuildKit's progress writer
rides in its context.Context: the build that asks for a base image sets one, and the registry
code reports to it wherever the pull runs (a thread, the build's loop: asyncio and
asyncio.to_thread carry context variables along)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BlobFetched:
    """A layer blob downloaded into the content store (Unix times)."""

    digest: str
    size: int
    started: float
    completed: float


@dataclass(frozen=True, slots=True)
class TokenFetched:
    """A bearer token fetched for `host` with the user's credentials, for `scopes`
    (`repository:library/busybox:pull`); `error` when the token server refused it."""

    host: str
    scopes: tuple[str, ...]
    started: float
    completed: float
    error: str | None = None


class PullObserver(Protocol):
    """Who wants to know; called from any thread."""

    def blob_fetched(self, event: BlobFetched) -> None: ...

    def token_fetched(self, event: TokenFetched) -> None: ...


_OBSERVER: contextvars.ContextVar[PullObserver | None] = contextvars.ContextVar(
    "polybuild_pull_observer", default=None
)


@contextlib.contextmanager
def observing(observer: PullObserver) -> Iterator[None]:
    """Pulls started in this context (and the tasks and threads it starts) report to
    `observer` until the block ends."""
    token = _OBSERVER.set(observer)
    try:
        yield
    finally:
        _OBSERVER.reset(token)


def report_blob(event: BlobFetched) -> None:
    observer = _OBSERVER.get()
    if observer is not None:
        observer.blob_fetched(event)


def report_token(event: TokenFetched) -> None:
    observer = _OBSERVER.get()
    if observer is not None:
        observer.token_fetched(event)


__all__ = [
    "BlobFetched",
    "PullObserver",
    "TokenFetched",
    "observing",
    "report_blob",
    "report_token",
]
