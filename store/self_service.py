"""The customer's own notes and preferences in Redis (written by the worker from
cx.self-service.v1; streams.self_service).

- `cxt:{C-1}:notes`: hash note_id -> note JSON (note_id, text, added_at, event_id).
- `cxt:{C-1}:prefs`: the latest preferences JSON (schemas/self-service.v1.json's
  preferences object plus `set_at`, `event_id` and `occurred_ms`).

Both live in the customer's slot, so they go with the customer's other keys on a
cluster and are erased with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from kernel.redis_client import RedisClient
from store.keys import Keys

DEFAULT_NOTES = 50


@dataclass(frozen=True, slots=True)
class OwnWords:
    """What the customer told us themselves: notes newest first, and preferences."""

    notes: list[dict]
    preferences: dict | None


class SelfServiceStore:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    async def own_words(self, customer_ids: Sequence[str],
                        limit: int = DEFAULT_NOTES) -> list[OwnWords]:
        """Notes (newest first, at most `limit`) and preferences of each customer: one
        round trip for all of them."""
        pipe = self.redis.pipeline(transaction=False)
        for customer_id in customer_ids:
            pipe.hvals(self.keys.notes(customer_id))
            pipe.get(self.keys.preferences(customer_id))
        replies = await pipe.execute()
        found = []
        for index in range(len(customer_ids)):
            notes = [orjson.loads(body) for body in replies[2 * index]]
            notes.sort(key=lambda note: (note.get("added_at") or "", note.get("note_id") or ""),
                       reverse=True)
            prefs = replies[2 * index + 1]
            found.append(OwnWords(notes[:limit], None if prefs is None else orjson.loads(prefs)))
        return found

    async def notes(self, customer_id: str, limit: int = DEFAULT_NOTES) -> list[dict]:
        return (await self.own_words([customer_id], limit))[0].notes

    async def preferences(self, customer_id: str) -> dict | None:
        return (await self.own_words([customer_id]))[0].preferences
