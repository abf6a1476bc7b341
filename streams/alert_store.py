"""Alerts and survey counters in Redis.

Each alert is one key of its own (`cxt:{AL-...}:alert`), so "one alert per
survey" holds globally, whichever customer or provisional profile the survey
was filed under when it was (re)delivered.  The customer's set
(`cxt:{C-1001}:alerts`) lists their alert ids; two global sorted sets list
alerts by raised time (`cxt:alerts:recent`) and by acknowledgement deadline
(`cxt:alerts:due`, for escalation).  An alert raised before its rated contact
arrived is listed in the customer's waits (`cxt:{C-1001}:rwait`), which the
timeline insert reports when the contact comes.  Survey counters are one hash
per UTC hour (`cxt:{m:2026112210}:n`), counted once per survey event thanks
to a set of counted event ids kept beside it for a week.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio import Redis

from streams.keys import Keys
from streams.scripts import run_scripts
from streams.store import AddResult, RatedWait, classify_insert

# KEYS: alert key.  ARGV: JSON.  1 when stored, else the stored JSON.
_PUT_NEW = """
local existing = redis.call('GET', KEYS[1])
if existing then return existing end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS: alert key.  ARGV: expected version, JSON.
# 1 replaced, 0 someone else changed it first, -1 no such alert.
_REPLACE = """
local current = redis.call('GET', KEYS[1])
if not current then return -1 end
if cjson.decode(current)['version'] ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1
"""

# KEYS: hour counters hash, counted-ids set.  ARGV: event_id, counters TTL,
# set TTL, then field/increment pairs.
# Counts the surveys of one hour, each once.  KEYS: the hour's counters hash and
# its set of counted survey ids.  ARGV: counters TTL, ids TTL, then per survey:
# event_id, n, and n (field, amount) pairs.  Returns how many were new.
_COUNT_SURVEYS = """
local counted, i = 0, 3
while i <= #ARGV do
  local n = tonumber(ARGV[i + 1])
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    for j = i + 2, i + 2 * n, 2 do redis.call('HINCRBY', KEYS[1], ARGV[j], ARGV[j + 1]) end
    counted = counted + 1
  end
  i = i + 2 + 2 * n
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
if counted > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return counted
"""

# KEYS: the customer's rated-contact waits, channel-id index, entries hash.  ARGV:
# contact_id, alert_id, TTL.  1 when the contact is stored already (nothing written),
# else 0 after adding the alert to those waiting for it.  Atomic with the entry insert
# (same slot), so an entry stored by another worker is either seen here or sees this.
_WAIT = """
local hit = redis.call('HGET', KEYS[2], ARGV[1])
if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1
    or (hit and redis.call('HEXISTS', KEYS[3], hit) == 1) then
  return 1
end
local waiting = redis.call('HGET', KEYS[1], ARGV[1])
if not waiting then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
elseif not string.find(' ' .. waiting .. ' ', ' ' .. ARGV[2] .. ' ', 1, true) then
  redis.call('HSET', KEYS[1], ARGV[1], waiting .. ' ' .. ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 0
"""

COUNTED_IDS_TTL_S = 7 * 86_400
# How long an alert waits for a rated contact that has not arrived: a contact weeks
# late would be a source's bug, and the wait must not be kept for ever.
RATED_WAIT_TTL_S = 7 * 86_400
RECENT_ALERTS_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class SurveyCount:
    event_id: str
    hour: str
    fields: dict[str, int]


class AlertStore:
    def __init__(self, redis: Redis, keys: Keys, *, counters_ttl_days: int) -> None:
        self.redis = redis
        self.keys = keys
        self.counters_ttl_s = counters_ttl_days * 86_400
        self._put_new = redis.register_script(_PUT_NEW)
        self._replace = redis.register_script(_REPLACE)
        self._count = redis.register_script(_COUNT_SURVEYS)
        self._wait = redis.register_script(_WAIT)

    # -- raising ------------------------------------------------------------------

    async def context(self, wanted: Sequence[tuple[str, str | None]], size: int
                      ) -> list[tuple[list[dict], dict | None]]:
        """For each (customer_id, contact_id): newest entries, and the rated entry: the one
        whose event_id is contact_id, else the one the channel-id index names for it."""
        pipe = self.redis.pipeline(transaction=False)
        for cid, contact_id in wanted:
            pipe.zrevrange(self.keys.timeline(cid), 0, size - 1)
            pipe.hget(self.keys.contact_ids(cid), contact_id or "")
        first = await pipe.execute()
        pipe = self.redis.pipeline(transaction=False)
        for (cid, contact_id), ids, indexed in zip(wanted, first[::2], first[1::2],
                                                   strict=True):
            pipe.hmget(self.keys.entries(cid), [*ids, contact_id or "", indexed or ""])
        out = []
        for bodies in await pipe.execute():
            entries = [orjson.loads(b) for b in bodies[:-2] if b is not None]
            rated = next((b for b in bodies[-2:] if b is not None), None)
            out.append((entries, None if rated is None else orjson.loads(rated)))
        return out

    async def wait_for_contacts(self, waits: Sequence[tuple[str, str, str]]) -> list[bool]:
        """For each (customer_id, contact_id, alert_id) of an alert raised without its
        rated contact: remember that the alert waits for it, so that the entry's insert
        reports it (`TimelineStore.add_entries`).  True where the contact has arrived
        meanwhile (another worker stored it between our lookup and now): update now."""
        if not waits:
            return []
        replies = await run_scripts(self.redis, [
            (self._wait, [self.keys.rated_waits(cid), self.keys.contact_ids(cid),
                          self.keys.entries(cid)], [contact_id, alert_id, RATED_WAIT_TTL_S])
            for cid, contact_id, alert_id in waits])
        return [reply == 1 for reply in replies]

    async def move_waits(self, from_id: str, to_id: str) -> list[RatedWait]:
        """Waits of a provisional profile's alerts, moved to the customer it was linked to
        (where its surveys now are); those whose contact the customer already has."""
        waits = await self.redis.hgetall(self.keys.rated_waits(from_id))
        if not waits:
            return []
        wanted = [(to_id, ref.decode(), alert_id) for ref, ids in waits.items()
                  for alert_id in ids.decode().split()]
        arrived = await self.wait_for_contacts(wanted)
        await self.redis.hdel(self.keys.rated_waits(from_id), *waits)
        # retry: this may be a repeat after a crash, when the update may be done but unsent.
        return [RatedWait(cid, ref, (alert_id,), retry=True)
                for (cid, ref, alert_id), found in zip(wanted, arrived, strict=True) if found]

    async def entries(self, customer_id: str, event_ids: Sequence[str]) -> list[dict | None]:
        bodies = await self.redis.hmget(self.keys.entries(customer_id), list(event_ids))
        return [None if b is None else orjson.loads(b) for b in bodies]

    async def put_new(self, alerts: Sequence[dict], raised_ms: int, ack_timeout_ms: int
                      ) -> list[tuple[AddResult, dict]]:
        """Store raised alerts unless already there; index them for lookup and escalation.

        Returns each alert's outcome with the alert as stored (the earlier one
        when it was already there).
        """
        if not alerts:
            return []
        replies = await run_scripts(self.redis, [
            (self._put_new, [self.keys.alert(alert["alert_id"])], [orjson.dumps(alert)])
            for alert in alerts])
        results = [_outcome(reply, alert) for reply, alert in zip(replies, alerts, strict=True)]
        pipe = self.redis.pipeline(transaction=False)
        for alert, (result, _) in zip(alerts, results, strict=True):
            if result is AddResult.DUPLICATE:
                continue
            pipe.sadd(self.keys.customer_alerts(alert["customer_id"]), alert["alert_id"])
            pipe.zadd(self.keys.alerts_recent(), {alert["alert_id"]: raised_ms}, nx=True)
            if result is AddResult.NEW:
                pipe.zadd(self.keys.alerts_due(), {alert["alert_id"]: raised_ms + ack_timeout_ms},
                          nx=True)
        pipe.zremrangebyrank(self.keys.alerts_recent(), 0, -RECENT_ALERTS_KEPT - 1)
        await pipe.execute()
        return results

    # -- reading and changing -------------------------------------------------------

    async def get_many(self, alert_ids: Sequence[str]) -> list[dict | None]:
        if not alert_ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for alert_id in alert_ids:
            pipe.get(self.keys.alert(alert_id))
        return [None if b is None else orjson.loads(b) for b in await pipe.execute()]

    async def get(self, alert_id: str) -> dict | None:
        return (await self.get_many([alert_id]))[0]

    async def replace(self, alert: dict, expected_version: int) -> bool:
        """Write `alert` if nobody changed it since `expected_version` was read."""
        reply = await self._replace(keys=[self.keys.alert(alert["alert_id"])],
                                    args=[expected_version, orjson.dumps(alert)])
        return reply == 1

    async def recent(self, limit: int) -> list[dict]:
        """The most recently raised alerts, newest first."""
        ids = [i.decode() for i in await self.redis.zrevrange(self.keys.alerts_recent(), 0,
                                                               limit - 1)]
        return [a for a in await self.get_many(ids) if a is not None]

    async def of_customer(self, customer_id: str) -> list[dict]:
        """Every alert of the customer that is still stored, in no particular order."""
        members = await self.redis.smembers(self.keys.customer_alerts(customer_id))
        found = await self.get_many(sorted(m.decode() for m in members))
        return [a for a in found if a is not None]

    async def erase_customer(self, customer_id: str) -> list[str]:
        """Delete the customer's alerts (they quote the customer's interactions) and take
        them out of both indexes; returns their ids."""
        members = await self.redis.smembers(self.keys.customer_alerts(customer_id))
        ids = sorted(i.decode() for i in members)
        pipe = self.redis.pipeline(transaction=False)
        for alert_id in ids:
            pipe.delete(self.keys.alert(alert_id))
        if ids:
            pipe.zrem(self.keys.alerts_recent(), *ids)
            pipe.zrem(self.keys.alerts_due(), *ids)
        pipe.delete(self.keys.customer_alerts(customer_id), self.keys.rated_waits(customer_id))
        await pipe.execute()
        return ids

    async def due(self, now_ms: int, limit: int = 500) -> list[str]:
        ids = await self.redis.zrangebyscore(self.keys.alerts_due(), "-inf", now_ms,
                                             start=0, num=limit)
        return [i.decode() for i in ids]

    async def not_due(self, alert_ids: Sequence[str]) -> None:
        if alert_ids:
            await self.redis.zrem(self.keys.alerts_due(), *alert_ids)

    # -- survey counters -------------------------------------------------------------

    async def count_surveys(self, counts: Sequence[SurveyCount]) -> None:
        """Count each survey once in its hour: one script call per hour, one round trip."""
        if not counts:
            return
        by_hour: dict[str, list[bytes | str | int]] = {}
        for c in counts:
            args = by_hour.setdefault(c.hour, [self.counters_ttl_s, COUNTED_IDS_TTL_S])
            args += (c.event_id, len(c.fields))
            for pair in c.fields.items():
                args += pair

        await run_scripts(self.redis, [
            (self._count, [self.keys.survey_counters(hour), self.keys.survey_counted(hour)], args)
            for hour, args in by_hour.items()])

    async def counters(self, buckets: Sequence[str]) -> dict[str, dict[bytes, bytes]]:
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hgetall(self.keys.survey_counters(bucket))
        return dict(zip(buckets, await pipe.execute(), strict=True))


def _outcome(reply: object, alert: dict) -> tuple[AddResult, dict]:
    result, stored = classify_insert(reply, alert.get("source"))
    return result, alert if stored is None else stored
