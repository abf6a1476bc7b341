"""The identity index, customer records, merges and provisional aliases in Redis.

- `cxt:{phone:+44...}:id`: the identifier's claimants, customer ids joined by a
  newline (domain.identity); one claimant is the common case and reads as the
  plain id, so the index written before shared identifiers reads the same.
- `cxt:{C-1}:profile`: the latest customer record.
- `cxt:{C-1}:into`: the customer C-1 is merged into (its record's `merged_into`);
  in C-1's slot, so the timeline insert refuses C-1 atomically once it is merged
  (store.timeline) and the worker files the entry under the root instead.
- `cxt:{C-2}:merged`: the customers merged straight into C-2 (a set), to find
  every part of a root for unmerge, erasure and `cxt customers show`.
- `cxt:{phone:+44...}:alias`: provisional profiles holding entries that carry the
  identifier after their first one, so claiming any identifier links them.

Every method is one round trip, except the claim changes on a cluster (one
script call per identifier there).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio.cluster import RedisCluster

from domain.identity import MAX_CHAIN, parse_claimants
from kernel.redis_client import RedisClient, text
from store.keys import Keys
from store.scripts import ScriptCall, run_scripts

# KEYS: an identifier's index key.  ARGV: "+" or "-", a customer id.  Adds the
# customer to the claimants or takes it out (deleting the key with the last one);
# replies with the claimants after the change.
_CLAIM = """
local value = redis.call('GET', KEYS[1])
local list, found = {}, false
if value then
  for id in string.gmatch(value, '[^\\n]+') do
    if id == ARGV[2] then
      found = true
      -- Claimed again: keep its place (the order decides provenance, domain.identity).
      if ARGV[1] == '+' then list[#list + 1] = id end
    else list[#list + 1] = id end
  end
end
if ARGV[1] == '+' and not found then list[#list + 1] = ARGV[2] end
if #list == 0 then
  redis.call('DEL', KEYS[1])
  return ''
end
local joined = table.concat(list, '\\n')
if joined ~= value then redis.call('SET', KEYS[1], joined) end
return joined
"""


@dataclass(frozen=True, slots=True)
class ProfileChange:
    customer_id: str
    record: dict | None  # None erases the customer
    claimed: tuple[str, ...] = ()  # identity keys this customer now claims
    released: tuple[str, ...] = ()  # identity keys it no longer claims


class IdentityStore:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.one_slot = not isinstance(redis, RedisCluster)
        self._claim = redis.register_script(_CLAIM)

    # -- claimants ---------------------------------------------------------------

    async def claimants(self, identity_keys: Sequence[str]) -> list[tuple[str, ...]]:
        """Each identifier's claimants (none: nobody claims it)."""
        return [parse_claimants(None if v is None else text(v)) for v in await self._get_many(
            [self.keys.identity(k) for k in identity_keys])]

    async def apply_profiles(self, changes: Sequence[ProfileChange]) -> None:
        """Write records (or erase them) and change claims, in order."""
        if not changes:
            return
        claims: list[ScriptCall] = [
            (self._claim, [self.keys.identity(key)], [sign, c.customer_id])
            for c in changes
            for sign, keys in (("-", c.released), ("+", c.claimed)) for key in keys]
        pipe = self.redis.pipeline(transaction=False)
        for c in changes:
            if c.record is None:
                pipe.delete(self.keys.profile(c.customer_id))
            else:
                pipe.set(self.keys.profile(c.customer_id), orjson.dumps(c.record))
        await pipe.execute()
        await run_scripts(self.redis, claims)

    # -- merges ------------------------------------------------------------------

    async def merged_into(self, customer_ids: Sequence[str]) -> dict[str, str]:
        """The merges of these customers and of every customer their chains pass,
        {customer: customer it is merged into}; a round trip per chain link."""
        found: dict[str, str] = {}
        wanted = list(dict.fromkeys(customer_ids))
        for _ in range(MAX_CHAIN):
            if not wanted:
                break
            got = await self._get_many([self.keys.merged_into(cid) for cid in wanted])
            step = {cid: text(v) for cid, v in zip(wanted, got, strict=True) if v is not None}
            found.update(step)
            wanted = [into for into in dict.fromkeys(step.values()) if into not in found]
        return found

    async def set_merge(self, customer_id: str, into: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.keys.merged_into(customer_id), into)
        pipe.sadd(self.keys.merged_from(into), customer_id)
        await pipe.execute()

    async def clear_merge(self, customer_id: str, into: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.keys.merged_into(customer_id))
        pipe.srem(self.keys.merged_from(into), customer_id)
        await pipe.execute()

    async def parts(self, customer_id: str) -> list[str]:
        """The customer and every customer merged into it, directly or through others
        (a round trip per level)."""
        out, level = [customer_id], [customer_id]
        for _ in range(MAX_CHAIN):
            pipe = self.redis.pipeline(transaction=False)
            for cid in level:
                pipe.smembers(self.keys.merged_from(cid))
            below = sorted({text(m) for got in await pipe.execute() for m in got} - set(out))
            if not below:
                break
            out += below
            level = below
        return out

    # -- provisional aliases -----------------------------------------------------

    async def add_aliases(self, aliases: Sequence[tuple[str, str]]) -> None:
        """(identifier key, provisional id holding an entry that carries it)."""
        if not aliases:
            return
        pipe = self.redis.pipeline(transaction=False)
        for key, pid in aliases:
            pipe.sadd(self.keys.provisional_aliases(key), pid)
        await pipe.execute()

    async def alias_and_look_up(self, aliases: Sequence[tuple[str, str]],
                                identity_keys: Sequence[str]) -> list[tuple[str, ...]]:
        """`add_aliases`, then `claimants` of these keys: one round trip."""
        if not self.one_slot:  # a cluster pipeline cannot hold a multi-slot MGET
            await self.add_aliases(aliases)
            return await self.claimants(identity_keys)
        pipe = self.redis.pipeline(transaction=False)
        for key, pid in aliases:
            pipe.sadd(self.keys.provisional_aliases(key), pid)
        pipe.mget([self.keys.identity(k) for k in identity_keys])
        found = (await pipe.execute())[-1]
        return [parse_claimants(None if v is None else text(v)) for v in found]

    async def aliases(self, identity_keys: Sequence[str]) -> list[list[str]]:
        """Each identifier's provisional profiles holding it beyond their first identifier."""
        if not identity_keys:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for key in identity_keys:
            pipe.smembers(self.keys.provisional_aliases(key))
        return [sorted(text(m) for m in got) for got in await pipe.execute()]

    async def drop_alias(self, identity_key: str, pid: str) -> None:
        await self.redis.srem(self.keys.provisional_aliases(identity_key), pid)

    async def erase(self, customer_id: str) -> None:
        """A customer's own identity keys: record, merge and the list of merged parts."""
        await self.redis.delete(self.keys.profile(customer_id),
                                self.keys.merged_into(customer_id),
                                self.keys.merged_from(customer_id))

    async def _get_many(self, keys: Sequence[str]) -> list[bytes | str | None]:
        if not keys:
            return []
        if self.one_slot:  # one command; a cluster refuses keys of several slots in one
            return list(await self.redis.mget(list(keys)))
        pipe = self.redis.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        return list(await pipe.execute())

