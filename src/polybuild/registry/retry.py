"""Which registry failures are worth another try, and how long to wait (Retry-After first)."""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx
import tenacity

from polybuild.errors import RegistryError

T = TypeVar("T")
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


class TransientError(Exception):
    """A failure that may pass: a 429/5xx answer or a body cut short. Never leaves the package."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry: exponential backoff with jitter, capped."""

    attempts: int = 5
    initial_wait: float = 0.5
    max_wait: float = 30.0

    def wait(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before attempt `attempt + 1`: Retry-After if the server gave it, else backoff."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        backoff = self.initial_wait * 2.0 ** (attempt - 1)
        return min(backoff * (0.5 + random.random() / 2), self.max_wait)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - time.time(), 0.0)


def is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, TransientError | httpx.TransportError)


def describe(exc: BaseException) -> str:
    """A short text for a transport failure (httpx messages can be empty)."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({text})"
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return text


async def retrying(policy: RetryPolicy, operation: Callable[[], Awaitable[T]], what: str) -> T:
    """Run `operation` until it succeeds, fails for good, or the attempts are used up.

    Transient failures that outlast the attempts become a RegistryError naming `what`.
    """

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        return policy.wait(state.attempt_number, retry_after)

    try:
        async for attempt in tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=wait,
            retry=tenacity.retry_if_exception(is_retryable),
            reraise=True,
        ):
            with attempt:
                return await operation()
    except (TransientError, httpx.TransportError) as exc:
        raise RegistryError(
            f"{what}: {describe(exc)} (gave up after {policy.attempts} attempts)",
            hint="check that the registry is up and reachable, then try again",
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover
