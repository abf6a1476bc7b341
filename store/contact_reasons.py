"""Contact-reason counters in Redis: contacts per hour by channel, queue and intent.

One hash per UTC hour (`cxt:{k:20261122}:10:n`, fields of domain.contact_reasons)
and beside it a hash of what was counted in that hour (`...:10:seen`): field
"c|<contact>" -> the dimensions the contact was counted under, "r|<contact>" and
"n|<contact>" once it was counted as a repeat or negative, "a|<alert_id>" once an
alert was.  A call's started and ended events, and redelivered ones, therefore
count once, and a contact first counted without a negative signal is counted
negative when a later event brings one, under the dimensions of its first count.

A contact is counted in the hour of the first of its events to arrive.  So that
the events of one contact on both sides of the hour count once, the script looks
for the contact in the neighbouring hours of the same day too: the hours of a
day share a hash tag (`{k:20261122}`), one cluster slot.  Only a contact that
straddles midnight, or whose events lie further apart than an hour, can be
counted twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson

from domain.contact_reasons import NEGATIVE_ALERTS, ContactCount, by_hour, dimensions
from domain.survey_metrics import hour_of
from kernel.redis_client import RedisClient
from store.keys import Keys
from store.scripts import ScriptCall, run_scripts

# KEYS: (counters, seen) hash pairs: the hour's first, then its neighbours of the same
# day.  ARGV: counters TTL, seen TTL, then one JSON array with per contact [contact,
# dimensions, repeat (0/1), negative (0/1)] (one argument: redis-py's encoding of many
# small ones costs the worker more than decoding costs Redis).  Returns how many
# contacts were new.
_COUNT_CONTACTS = """
local function counted_in(contact)
  for k = 2, #KEYS, 2 do
    local dims = redis.call('HGET', KEYS[k], 'c|' .. contact)
    if dims then return k, dims end
  end
  return nil, nil
end
local touched, new = {}, 0
for _, fact in ipairs(cjson.decode(ARGV[3])) do
  local contact = fact[1]
  local k, dims = counted_in(contact)
  if not k then
    k, dims = 2, fact[2]
    redis.call('HSET', KEYS[2], 'c|' .. contact, dims)
    redis.call('HINCRBY', KEYS[1], 'c|' .. dims, 1)
    new = new + 1
  end
  if fact[3] == 1 and redis.call('HSETNX', KEYS[k], 'r|' .. contact, 1) == 1 then
    redis.call('HINCRBY', KEYS[k - 1], 'r|' .. dims, 1)
  end
  if fact[4] == 1 and redis.call('HSETNX', KEYS[k], 'n|' .. contact, 1) == 1 then
    redis.call('HINCRBY', KEYS[k - 1], 'n|' .. dims, 1)
  end
  touched[k] = true
end
for k in pairs(touched) do
  redis.call('EXPIRE', KEYS[k - 1], ARGV[1])
  redis.call('EXPIRE', KEYS[k], ARGV[2])
end
return new
"""

# KEYS: the hour's counters and seen hashes.  ARGV: counters TTL, seen TTL, field, then
# alert ids.  Counts each alert once.
_COUNT_ALERTS = """
local new = 0
for i = 4, #ARGV do
  if redis.call('HSETNX', KEYS[2], 'a|' .. ARGV[i], 1) == 1 then
    redis.call('HINCRBY', KEYS[1], ARGV[3], 1)
    new = new + 1
  end
end
if new > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return new
"""

# Long enough for the redelivery of any batch and for late events of a contact; the
# counters themselves are kept as long as the timeline.
COUNTED_IDS_TTL_S = 7 * 86_400
_HOUR = timedelta(hours=1)


def _neighbours(hour: str) -> list[str]:
    """The hours before and after `hour` that fall on the same UTC day."""
    moment = datetime.strptime(hour, "%Y%m%d%H").replace(tzinfo=UTC)
    return [other for other in ((moment - _HOUR).strftime("%Y%m%d%H"),
                                (moment + _HOUR).strftime("%Y%m%d%H"))
            if other[:8] == hour[:8]]


class ContactReasonStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, ttl_days: int) -> None:
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_days * 86_400
        self._count_contacts = redis.register_script(_COUNT_CONTACTS)
        self._count_alerts = redis.register_script(_COUNT_ALERTS)

    async def count(self, counts: Sequence[ContactCount]) -> None:
        """Count each contact once (see the module): one script call per hour, one
        round trip for the batch."""
        if not counts:
            return
        calls: list[ScriptCall] = []
        for hour, of_hour in by_hour(counts).items():
            keys = [self.keys.contact_counters(hour), self.keys.contact_counted(hour)]
            for other in _neighbours(hour):
                keys += [self.keys.contact_counters(other), self.keys.contact_counted(other)]
            facts = orjson.dumps([(c.contact, dimensions(c.channel, c.queue, c.intent),
                                   int(c.repeat), int(c.negative)) for c in of_hour])
            calls.append((self._count_contacts, keys, [self.ttl_s, COUNTED_IDS_TTL_S, facts]))
        await run_scripts(self.redis, calls)

    async def count_alerts(self, raised: Sequence[tuple[str, int]]) -> None:
        """Count negative-interaction alerts (alert_id, raised epoch ms) once each in the
        UTC hour they were raised: one script call per hour, one round trip."""
        if not raised:
            return
        by_bucket: dict[str, list[str]] = {}
        for alert_id, raised_ms in raised:
            by_bucket.setdefault(hour_of(raised_ms), []).append(alert_id)
        await run_scripts(self.redis, [
            (self._count_alerts,
             [self.keys.contact_counters(hour), self.keys.contact_counted(hour)],
             [self.ttl_s, COUNTED_IDS_TTL_S, NEGATIVE_ALERTS, *ids])
            for hour, ids in by_bucket.items()])

    async def counters(self, buckets: Sequence[str]) -> dict[str, dict[bytes, bytes]]:
        """Each hour's counters hash (empty when nothing was counted)."""
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hgetall(self.keys.contact_counters(bucket))
        return dict(zip(buckets, await pipe.execute(), strict=True))
