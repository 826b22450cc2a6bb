"""The one retry layer of the HTTP backends (tenacity, exponential backoff with jitter); SDK retries stay off."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from ..errors import ModelError

__all__ = ["with_retries"]

T = TypeVar("T")


async def with_retries(
    call: Callable[[], Awaitable[T]],
    *,
    retryable: Callable[[BaseException], bool],
    attempts: int,
    backoff: float,
    api_error: type[BaseException],
    describe: str,
) -> T:
    """Run ``call`` until it succeeds, a non-retryable error occurs or ``attempts`` are used up; API errors
    become :class:`ModelError` naming ``describe``."""
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=backoff, max=8.0),
            reraise=True,
        ):
            with attempt:
                return await call()
    except api_error as exc:
        raise ModelError(f"{describe} failed: {exc}") from exc
    raise AssertionError("unreachable")  # pragma: no cover
