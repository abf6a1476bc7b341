"""The check every long-running process makes at start: do Kafka and Redis accept our
credentials?  A refusal stops the process with one line naming the setting to fix;
services that do not answer at all are waited for as before (they may be starting)."""

from __future__ import annotations

import asyncio

from kernel import kafka, redis_client
from kernel.settings import Settings

TIMEOUT_S = 5


async def check_access(settings: Settings, *, redis: bool = True) -> None:
    """KafkaAccessError or RedisAccessError if either refuses us; `redis` False for
    processes that never use it."""
    await kafka.check_access(settings)
    if not redis:
        return
    client = redis_client.connect(settings.redis_url, cluster=settings.redis_cluster,
                                  security=settings.redis_security,
                                  socket_connect_timeout=TIMEOUT_S, socket_timeout=TIMEOUT_S)
    try:
        await redis_client.check_access(client, settings.redis_url, settings.redis_prefix)
    finally:
        await client.aclose()


def check_access_at_start(settings: Settings, *, redis: bool = True) -> None:
    """`check_access` before a process starts its own event loop.

    On a loop of its own, not `asyncio.run`: that turns a Ctrl-C (or `cxt up`'s SIGINT)
    into a cancellation, which a client library caught in the middle may swallow, and
    the process would then start as if nothing had been asked.  Here the signal raises
    KeyboardInterrupt, which nothing swallows.
    """
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(check_access(settings, redis=redis))
    finally:
        loop.close()
