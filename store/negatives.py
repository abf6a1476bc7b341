"""What the negative-interaction signals remember between events, in Redis.

Two signals need more than the event in hand: the repeat contact (how many contacts
about this intent in the last days) and the abandoned call followed by another
contact.  Each customer has a sorted set of recent contacts and abandoned calls
(store.keys), written and read by one script call per batch (per cluster slot),
so the count is atomic with the insert: two workers counting the same customer
cannot both miss each other.  A contact is a member, so the started and
ended events of one call, or a redelivery, count once.

"At most one open negative-interaction alert per customer and intent" is a hash of
intent -> alert id beside them, changed only by compare-and-set scripts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio.cluster import RedisCluster

from kernel.redis_client import RedisClient, text
from store.keys import Keys, slot_groups
from store.scripts import ScriptCall, run_scripts

# KEYS: per contact its customer's contacts zset.  ARGV: repeat window ms, abandoned
# follow-up window ms, TTL s, then one JSON array with per contact [member, occurred
# ms, abandoned (0/1)]: one argument for the batch, since redis-py's encoding of many
# small arguments costs the worker more than the script costs Redis.  The zset holds
# "i<intent>\x1f<contact>" for a contact with an intent and "a\x1f<contact>" for an
# abandoned call; the member of a contact without intent is "n\x1f<contact>", never
# stored.  Replies per contact {contacts about its intent within the window up to it
# (0 without intent), the abandoned call it follows within the window or ""}.
_SEEN = """
local window, gap, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local reply = {}
for n, fact in ipairs(cjson.decode(ARGV[4])) do
  local contacts, member, at, gave_up = KEYS[n], fact[1], fact[2], fact[3]
  local split = string.find(member, '\\31', 1, true)
  local kind, contact = string.sub(member, 1, 1), string.sub(member, split + 1)
  local count, follows = 0, ''
  if kind == 'i' then
    -- LT: a contact's first event stays its time; later events of it do not move it.
    redis.call('ZADD', contacts, 'LT', at, member)
    local prefix = string.sub(member, 1, split)
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', contacts, at - window, at)) do
      if string.sub(m, 1, split) == prefix then count = count + 1 end
    end
  end
  if gave_up == 1 then
    redis.call('ZADD', contacts, 'LT', at, 'a\\31' .. contact)
  else
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', contacts, at - gap, at)) do
      if string.sub(m, 1, 2) == 'a\\31' and string.sub(m, 3) ~= contact then
        follows = string.sub(m, 3)
        break
      end
    end
  end
  if kind == 'i' or gave_up == 1 then
    redis.call('ZREMRANGEBYSCORE', contacts, '-inf', '(' .. (at - 2 * math.max(window, gap)))
    redis.call('EXPIRE', contacts, ttl)
  end
  reply[#reply + 1] = {count, follows}
end
return reply
"""

# KEYS: the customer's open-alert hash.  ARGV: intent, alert id expected ("" for none),
# alert id to set.  Replies the id there now: ARGV[3] when the swap happened.
_SWAP = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return ARGV[3]
end
return current
"""

# KEYS: the customer's open-alert hash.  ARGV: intent, alert id.  Forgets the alert
# as the open one, unless another has taken its place.
_RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""

# Contacts per script call: one call per batch on a single server.
CONTACTS_PER_CALL = 1000


@dataclass(frozen=True, slots=True)
class ContactFact:
    customer_id: str
    contact: str  # "<channel>:<id>" (domain.signals.contact_of)
    intent: str | None  # normalised; None: not counted for repeats
    occurred_ms: int
    abandoned: bool


@dataclass(frozen=True, slots=True)
class Swap:
    customer_id: str
    intent: str | None
    expected: str | None  # the open alert's id as read; None: there was none
    alert_id: str


@dataclass(frozen=True, slots=True)
class ContactSeen:
    same_intent: int  # contacts about its intent in the window up to it, itself included
    follows_abandoned: str | None  # the abandoned call's contact it follows, if any


class NegativeStore:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.one_slot = not isinstance(redis, RedisCluster)
        self._seen = redis.register_script(_SEEN)
        self._swap = redis.register_script(_SWAP)
        self._release = redis.register_script(_RELEASE)

    async def see_contacts(self, facts: Sequence[ContactFact], *, repeat_window_ms: int,
                           abandoned_window_ms: int) -> list[ContactSeen]:
        """Record each contact and say what it follows; one round trip for the batch."""
        if not facts:
            return []
        ttl_s = max(repeat_window_ms, abandoned_window_ms) * 2 // 1000 + 86_400
        groups = slot_groups(facts, lambda f: self.keys.contacts(f.customer_id),
                             CONTACTS_PER_CALL, one_slot=self.one_slot)
        calls: list[ScriptCall] = [
            (self._seen, [self.keys.contacts(f.customer_id) for f in group],
             [repeat_window_ms, abandoned_window_ms, ttl_s, orjson.dumps([
                 (f"i{f.intent}\x1f{f.contact}" if f.intent else f"n\x1f{f.contact}",
                  f.occurred_ms, int(f.abandoned)) for f in group])])
            for group in groups]
        seen: dict[int, ContactSeen] = {}
        for group, replies in zip(groups, await run_scripts(self.redis, calls), strict=True):
            for f, (count, follows) in zip(group, replies, strict=True):
                seen[id(f)] = ContactSeen(int(count), text(follows) or None)
        return [seen[id(f)] for f in facts]

    async def open_ids(self, customer_ids: Sequence[str]) -> list[dict[str, str]]:
        """Per customer: intent ("" for none) -> the id of its open alert."""
        pipe = self.redis.pipeline(transaction=False)
        for cid in customer_ids:
            pipe.hgetall(self.keys.open_negative(cid))
        return [{text(k): text(v) for k, v in found.items()} for found in await pipe.execute()]

    async def swap(self, customer_id: str, intent: str | None, expected: str | None,
                   alert_id: str) -> str:
        """Make `alert_id` the open alert for the intent if `expected` still is (None: if
        there is none); the id that is the open one afterwards."""
        return (await self.swap_many([Swap(customer_id, intent, expected, alert_id)]))[0]

    async def swap_many(self, swaps: Sequence[Swap]) -> list[str]:
        """`swap` for each, in one round trip."""
        if not swaps:
            return []
        replies = await run_scripts(self.redis, [
            (self._swap, [self.keys.open_negative(s.customer_id)],
             [s.intent or "", s.expected or "", s.alert_id]) for s in swaps])
        return [text(reply) for reply in replies]

    async def release(self, customer_id: str, intent: str | None, alert_id: str) -> None:
        await run_scripts(self.redis, [(
            self._release, [self.keys.open_negative(customer_id)], [intent or "", alert_id])])

    async def erase_customer(self, customer_id: str) -> None:
        await self.redis.delete(self.keys.contacts(customer_id),
                                self.keys.open_negative(customer_id))
