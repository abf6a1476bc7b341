"""Retrying with backoff: the one loop the worker and the summary feed wait out Redis
or Kafka being away in, retrying the same batch instead of skipping it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

T = TypeVar("T")
# Redis or Kafka away for a while: worth waiting for, never worth skipping a batch over.
TRANSIENT = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError)
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 5.0


class Stopped(Exception):
    """A stop was asked for while an attempt was being retried: it was abandoned."""


async def until_done(attempt: Callable[[], Awaitable[T]], what: str, log: logging.Logger, *,
                     stop: asyncio.Event | None = None,
                     permanent: tuple[type[BaseException], ...] = (),
                     failed: Callable[[BaseException], None] | None = None) -> T:
    """`attempt()` again after a transient failure, with doubling backoff, until it succeeds.

    `permanent` errors (transient ones that retrying cannot help) are raised at once.
    With `stop`, a failure once it is set raises `Stopped`, and the wait ends early.
    `failed` is told of each transient failure (a metric counts them).
    """
    backoff = FIRST_BACKOFF_S
    while True:
        try:
            return await attempt()
        except permanent:
            raise
        except TRANSIENT as exc:
            if failed is not None:
                failed(exc)
            if stop is not None and stop.is_set():
                raise Stopped from exc
            log.warning("%s failed (%s: %s); retrying in %.1fs, offsets not committed",
                        what, type(exc).__name__, exc, backoff)
            if stop is None:
                await asyncio.sleep(backoff)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
