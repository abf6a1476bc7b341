"""The timeline store in Redis: idempotent, ordered, bounded.

A customer's timeline is two keys sharing the customer's hash tag (see
`streams.keys`): a sorted set ordering event ids by `occurred_at` and a hash
holding each entry's JSON.  One Lua script inserts an entry into both and
trims retention atomically, so a worker killed between two commands can never
leave half an entry behind.  Every public method costs one round trip for a
whole batch (a pipeline), whatever the batch size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import orjson
from redis.asyncio import Redis

from streams.keys import Keys

# KEYS: timeline zset, entries hash.  ARGV: event_id, score (occurred ms),
# entry JSON, max entries, min score (oldest occurred ms kept).
# Returns 1 when inserted, else the stored JSON (so the caller can tell our
# own redelivery from a source duplicate without a second round trip).
_ADD_ENTRY = """
local existing = redis.call('HGET', KEYS[2], ARGV[1])
if existing then return existing end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local function drop(ids)
  for i = 1, #ids, 1000 do
    redis.call('HDEL', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  end
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess > 0 then
  drop(redis.call('ZRANGE', KEYS[1], 0, excess - 1))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
if #expired > 0 then
  drop(expired)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
end
return 1
"""

# KEYS: identity key.  ARGV: customer id.  Deletes the mapping only if it
# still points at that customer (another record may have claimed it since).
_RELEASE_IDENTITY = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class AddResult(Enum):
    NEW = "new"
    # Already stored from this very Kafka record: our own earlier attempt that
    # was not committed.  Publish again (at-least-once on the output topic).
    REDELIVERED = "redelivered"
    # Already stored from another record with the same event_id.
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class NewEntry:
    customer_id: str
    event_id: str
    occurred_ms: int
    body: bytes  # the entry's JSON, also what is published on cx.timeline.v1
    source: dict
    entry: dict  # the same entry, parsed


@dataclass(frozen=True, slots=True)
class StoredEntry:
    entry: dict
    occurred_ms: int


class TimelineStore:
    def __init__(self, redis: Redis, keys: Keys, *, max_entries: int, max_age_days: int) -> None:
        self.redis = redis
        self.keys = keys
        self.max_entries = max_entries
        self.max_age_ms = max_age_days * 86_400_000
        self._add = redis.register_script(_ADD_ENTRY)
        self._release = redis.register_script(_RELEASE_IDENTITY)

    async def add(self, entries: Sequence[NewEntry]) -> list[AddResult]:
        if not entries:
            return []
        oldest_kept = int(time.time() * 1000) - self.max_age_ms
        pipe = self.redis.pipeline(transaction=False)
        for e in entries:
            await self._add(
                keys=[self.keys.timeline(e.customer_id), self.keys.entries(e.customer_id)],
                args=[e.event_id, e.occurred_ms, e.body, self.max_entries, oldest_kept],
                client=pipe,
            )
        replies = await pipe.execute()
        return [classify_insert(reply, e.source)[0]
                for reply, e in zip(replies, entries, strict=True)]

    async def read(
        self,
        customer_id: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        channel: str | None = None,
        limit: int | None = None,
    ) -> list[dict]:
        """Entries newest `occurred_at` first, filtered as asked."""
        ids = await self.redis.zrevrangebyscore(
            self.keys.timeline(customer_id),
            "+inf" if until_ms is None else until_ms,
            "-inf" if since_ms is None else since_ms,
        )
        if not ids:
            return []
        bodies = await self.redis.hmget(self.keys.entries(customer_id), ids)
        out: list[dict] = []
        for body in bodies:
            if body is None:  # trimmed between the two reads
                continue
            entry = orjson.loads(body)
            if channel is not None and entry.get("channel") != channel:
                continue
            out.append(entry)
            if limit is not None and len(out) >= limit:
                break
        return out

    async def page(
        self,
        customer_id: str,
        *,
        limit: int,
        since_ms: int | None = None,
        until_ms: int | None = None,
        channel: str | None = None,
        before: tuple[int, str] | None = None,
    ) -> tuple[list[dict], tuple[int, str] | None]:
        """One page, newest first, and the cursor of the next page (None: no more).

        The cursor is the (occurred ms, event_id) of the last entry returned, so
        entries arriving between two page reads shift nothing: no repeats, no gaps.
        Members with equal scores come in descending event_id order in a reverse
        range, which is what makes the pair a total order.
        """
        top = until_ms if before is None else min(before[0], until_ms or before[0])
        scored = await self.redis.zrevrangebyscore(
            self.keys.timeline(customer_id), "+inf" if top is None else top,
            "-inf" if since_ms is None else since_ms, withscores=True)
        score_of = {eid: int(score) for eid, score in scored
                    if before is None or (int(score), eid.decode()) < before}
        ids = list(score_of)
        out: list[dict] = []
        chunk = max(limit + 1, 64)
        # Bodies are fetched a chunk at a time: a page of 50 reads ~50 bodies, not
        # the whole timeline, unless a channel filter has to look further.
        for start in range(0, len(ids), chunk):
            bodies = await self.redis.hmget(self.keys.entries(customer_id),
                                            ids[start:start + chunk])
            for body in bodies:
                if body is None:
                    continue
                entry = orjson.loads(body)
                if channel is None or entry.get("channel") == channel:
                    out.append(entry)
            if len(out) > limit:
                break
        page = out[:limit]
        if len(out) <= limit:
            return page, None
        last = page[-1]["event_id"]
        return page, (score_of[last.encode()], last)

    async def take_all(self, customer_id: str) -> list[StoredEntry]:
        """Every entry of a (provisional) profile with its sort score."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.keys.timeline(customer_id), 0, -1, withscores=True)
        pipe.hgetall(self.keys.entries(customer_id))
        scored, bodies = await pipe.execute()
        return [
            StoredEntry(orjson.loads(bodies[eid]), int(score))
            for eid, score in scored
            if eid in bodies
        ]

    async def drop_timeline(self, customer_id: str) -> None:
        await self.redis.delete(self.keys.timeline(customer_id), self.keys.entries(customer_id))

    # -- identity index and customer profiles --------------------------------

    async def lookup(self, identity_keys: Sequence[str]) -> list[str | None]:
        if not identity_keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in identity_keys:
            pipe.get(self.keys.identity(key))
        return [None if v is None else v.decode() for v in await pipe.execute()]

    async def profiles(self, customer_ids: Sequence[str]) -> list[dict | None]:
        if not customer_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.get(self.keys.profile(cid))
        return [None if v is None else orjson.loads(v) for v in await pipe.execute()]

    async def exists_many(self, customer_ids: Sequence[str]) -> list[bool]:
        pipe = self.redis.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.exists(self.keys.timeline(cid))
        return [bool(n) for n in await pipe.execute()]

    async def apply_profiles(self, changes: Sequence[ProfileChange]) -> None:
        """Write profile upserts and erasures, in order, in one round trip."""
        if not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        for change in changes:
            cid = change.customer_id
            for key in change.released:
                await self._release(keys=[self.keys.identity(key)], args=[cid], client=pipe)
            if change.record is None:
                pipe.delete(self.keys.profile(cid), self.keys.timeline(cid), self.keys.entries(cid))
                continue
            pipe.set(self.keys.profile(cid), orjson.dumps(change.record))
            for key in change.claimed:
                pipe.set(self.keys.identity(key), cid)
        await pipe.execute()


@dataclass(frozen=True, slots=True)
class ProfileChange:
    customer_id: str
    record: dict | None  # None erases the customer
    claimed: tuple[str, ...] = ()  # identity keys now pointing at this customer
    released: tuple[str, ...] = ()  # identity keys it no longer claims


def classify_insert(reply: object, source: dict | None) -> tuple[AddResult, dict | None]:
    """Read a store-if-absent script's reply: 1, or the JSON already stored.

    The stored value's `source` (inbound topic, partition, offset) tells our own
    redelivery of the same record from another record with the same id.
    Returns the outcome and the stored value (None when newly stored).
    """
    if reply == 1:
        return AddResult.NEW, None
    stored = orjson.loads(reply)  # type: ignore[arg-type]
    same = stored.get("source") == source
    return (AddResult.REDELIVERED if same else AddResult.DUPLICATE), stored
