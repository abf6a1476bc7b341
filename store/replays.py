"""Which dead letters were replayed (`cxt deadletters replay`), so none is replayed twice.

One hash per dead-letter topic (`Keys.deadletters_replayed`), field "<partition>:<offset>".
A dead letter is marked once Kafka has acknowledged its replay: a replay killed between
the two sends those records again next time, and the worker stores an event once
whatever number of times it arrives (timeline entries are keyed by event_id).
"""

from __future__ import annotations

from collections.abc import Sequence

from kernel.redis_client import RedisClient
from store.keys import Keys


class ReplayLog:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def replayed(self, topic: str, ids: Sequence[str]) -> set[str]:
        """Those of `ids` replayed before."""
        if not ids:
            return set()
        found = await self.redis.hmget(self.keys.deadletters_replayed(topic), list(ids))
        return {i for i, at in zip(ids, found, strict=True) if at is not None}

    async def mark(self, topic: str, ids: Sequence[str], at_ms: int) -> None:
        if ids:
            await self.redis.hset(self.keys.deadletters_replayed(topic),
                                  mapping=dict.fromkeys(ids, at_ms))
