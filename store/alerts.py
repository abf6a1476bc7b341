"""Alerts and survey counters in Redis.

Each alert is one key of its own (`cxt:{AL-...}:alert`), so "one alert per
survey" holds globally, whichever customer or provisional profile the survey
was filed under when it was (re)delivered.  The customer's set
(`cxt:{C-1001}:alerts`) lists their alert ids; two global sorted sets list
alerts by raised time (`cxt:alerts:recent`) and by acknowledgement deadline
(`cxt:alerts:due`, for escalation).  An alert raised before its rated contact
arrived is listed in the customer's waits (`cxt:{C-1001}:rwait`) by the very
script call that looked for the contact, and the timeline insert reports it
when the contact comes.  Survey counters are one hash
per UTC hour (`cxt:{m:2026112210}:n`), counted once per survey event thanks
to a set of counted event ids kept beside it for a week; the same mark counts the
survey's outcome for the agent it names (`Tally`, store.agents) once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import orjson
from redis.asyncio.cluster import RedisCluster

from domain.alerts import OPEN
from domain.contacts import parse_ms
from domain.rated import needles
from domain.records import Alert, TimelineEntry
from kernel import jsonbytes
from kernel.redis_client import RedisClient, text
from store.keys import Keys, slot_groups
from store.scripts import ScriptCall, run_scripts
from store.timeline import AddResult, RatedWait, classify_insert

# KEYS: alert keys.  ARGV: their JSON, in the same order.  Replies per alert 1 when
# stored, else the JSON stored before.
_PUT_NEW = """
local replies = {}
for i = 1, #KEYS do
  local existing = redis.call('GET', KEYS[i])
  if existing then
    replies[i] = existing
  else
    redis.call('SET', KEYS[i], ARGV[i])
    replies[i] = 1
  end
end
return replies
"""
# Alerts per store call: one call per batch on a single server (per slot on a cluster).
ALERTS_PER_CALL = 200

# KEYS: per customer its timeline zset and entries hash.  ARGV: how many entries.
# Replies per customer its newest entries' JSON, newest first.
_NEWEST = """
local size, replies = tonumber(ARGV[1]), {}
for i = 1, #KEYS / 2 do
  local ids = redis.call('ZREVRANGE', KEYS[2 * i - 1], 0, size - 1)
  replies[i] = #ids > 0 and redis.call('HMGET', KEYS[2 * i], unpack(ids)) or {}
end
return replies
"""

# KEYS: alert keys.  ARGV: per alert its expected version and new JSON.  Replies per
# alert 1 replaced, 0 someone else changed it first, -1 no such alert.
_REPLACE = """
local replies = {}
for i = 1, #KEYS do
  local current = redis.call('GET', KEYS[i])
  if not current then
    replies[i] = -1
  elseif cjson.decode(current)['version'] ~= tonumber(ARGV[2 * i - 1]) then
    replies[i] = 0
  else
    redis.call('SET', KEYS[i], ARGV[2 * i])
    replies[i] = 1
  end
end
return replies
"""

# Counts the surveys of one hour, each once.  KEYS: the hour's counters hash, its set
# of counted survey ids, then the other keys counted with them (`Tally`).  ARGV:
# counters TTL, ids TTL, how many other keys (m), their m TTLs, then per survey:
# event_id, n, n (field, amount) pairs, how many tallies, and per tally its key's
# number (1 is KEYS[3]), f, f (field, amount) pairs.  Returns the ids counted now.
_COUNT_SURVEYS = """
local m = tonumber(ARGV[3])
local counted, touched, i = {}, {}, 4 + m
local function add(key, at, n)
  for j = at, at + 2 * n - 2, 2 do redis.call('HINCRBY', key, ARGV[j], ARGV[j + 1]) end
end
while i <= #ARGV do
  local event_id, n = ARGV[i], tonumber(ARGV[i + 1])
  local new = redis.call('SADD', KEYS[2], event_id) == 1
  if new then
    add(KEYS[1], i + 2, n)
    counted[#counted + 1] = event_id
  end
  i = i + 2 + 2 * n
  local tallies = tonumber(ARGV[i])
  i = i + 1
  for _ = 1, tallies do
    local key, f = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
    if new then
      add(KEYS[2 + key], i + 2, f)
      touched[key] = true
    end
    i = i + 2 + 2 * f
  end
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
if #counted > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
for key in pairs(touched) do redis.call('EXPIRE', KEYS[2 + key], ARGV[3 + key]) end
return counted
"""

# KEYS: alert key, its rated-early mark.  ARGV: the mark's TTL.  The alert, or nil after
# setting the mark: an update for an alert not stored yet leaves word for its raise.
_GET_FOR_RATING = """
local alert = redis.call('GET', KEYS[1])
if alert then return alert end
redis.call('SET', KEYS[2], 1, 'EX', ARGV[1])
return false
"""

# An alert's view of its customer's timeline, in one atomic call.  KEYS: the customer's
# timeline zset, entries hash and rated-contact waits.  ARGV: context size, scan chunk
# size, contact_id ('' for none), alert_id ('' to register no wait), wait TTL, contact_id
# as JSON spells it inside a string, then (needle, field, channel) triples
# (domain.rated.needles).
# Replies {rated entry or nil, the newest context-size entries...}.  The rated entry:
# the one whose event_id is contact_id, else the newest (by occurred_at, ties in zset
# order) whose channel's field holds contact_id.  Nothing is indexed when entries are
# stored, so this scans the timeline newest first, testing each stored JSON for the
# needles before decoding it.  When nothing is found and an alert_id is given, the
# alert is added to those waiting for contact_id, in the same call: an entry insert
# (same slot) either ran before and was found, or runs after and sees the wait.
_RATED = """
local timeline, entries, waits = KEYS[1], KEYS[2], KEYS[3]
local size, chunk = tonumber(ARGV[1]), tonumber(ARGV[2])
local contact_id, alert_id = ARGV[3], ARGV[4]
local function bodies(first, last)
  local ids = redis.call('ZREVRANGE', timeline, first, last)
  if #ids == 0 then return {} end
  return redis.call('HMGET', entries, unpack(ids))
end
-- Whether this stored JSON is an entry whose channel's field holds contact_id.  Most
-- bodies do not contain contact_id at all: one plain find for it rules them out.
local function carries(body)
  if not string.find(body, ARGV[6], 1, true) then return false end
  for t = 7, #ARGV, 3 do
    if string.find(body, ARGV[t], 1, true) then
      local ok, entry = pcall(cjson.decode, body)
      local payload = ok and type(entry) == 'table' and entry['payload']
      if type(payload) == 'table' and entry['channel'] == ARGV[t + 2]
          and payload[ARGV[t + 1]] == contact_id then
        return true
      end
    end
  end
  return false
end
local function first_carrier(found)
  for i = 1, #found do
    if found[i] and carries(found[i]) then return found[i] end
  end
  return false
end
-- The newest entries are read already; the rest of the timeline follows in chunks,
-- until a hit or a chunk comes back empty.
local function rated(newest)
  local hit = redis.call('HGET', entries, contact_id)
  if hit then return hit end
  local found, start = newest, size
  hit = first_carrier(found)
  while not hit and #found > 0 do
    found = bodies(start, start + chunk - 1)
    hit = first_carrier(found)
    start = start + chunk
  end
  return hit
end
local function wait()
  local waiting = redis.call('HGET', waits, contact_id)
  if not waiting then
    redis.call('HSET', waits, contact_id, alert_id)
  elseif not string.find(' ' .. waiting .. ' ', ' ' .. alert_id .. ' ', 1, true) then
    redis.call('HSET', waits, contact_id, waiting .. ' ' .. alert_id)
  end
  redis.call('EXPIRE', waits, ARGV[5])
end
local newest = bodies(0, size - 1)
local reply = {false}
for i = 1, #newest do
  if newest[i] then reply[#reply + 1] = newest[i] end
end
if contact_id == '' then return reply end
reply[1] = rated(newest)
if not reply[1] and alert_id ~= '' then wait() end
return reply
"""
# Entries per ZREVRANGE/HMGET step of that scan: small steps would cost calls, large
# ones memory held at once for a hit that is usually near the newest.
SCAN_CHUNK = 200

COUNTED_IDS_TTL_S = 7 * 86_400
# How long an alert waits for a rated contact that has not arrived: a contact weeks
# late would be a source's bug, and the wait must not be kept for ever.
RATED_WAIT_TTL_S = 7 * 86_400
# The gap it covers is the raise of one batch (or until a crashed batch is redelivered).
RATED_EARLY_TTL_S = 86_400
RECENT_ALERTS_KEPT = 50_000


@dataclass(frozen=True, slots=True)
class RatedLookup:
    customer_id: str
    contact_id: str | None  # as the survey names its contact; None: it names none
    context_size: int  # how many of the newest entries to return (at least 1)
    # The alert to register as waiting for the contact when it is not stored; None: none.
    alert_id: str | None = None


@dataclass(frozen=True, slots=True)
class Rated:
    context: list[TimelineEntry]  # the customer's newest entries, newest first
    contact: TimelineEntry | None  # the rated entry; None: not stored (or no contact_id)


# slots, not frozen: up to two are made per survey, and frozen costs 4x as much to create.
@dataclass(slots=True)
class Tally:
    """Increments of a hash outside the hour's counters, made once with their survey
    (routing's outcomes per agent, store.agents)."""

    key: str
    fields: dict[str, int]  # field -> amount
    ttl_s: int  # the key's expiry, renewed by each survey counted


@dataclass(frozen=True, slots=True)
class SurveyCount:
    event_id: str
    hour: str
    fields: dict[str, int]
    also: tuple[Tally, ...] = ()


class AlertStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, counters_ttl_days: int) -> None:
        self.redis = redis
        self.keys = keys
        self.counters_ttl_s = counters_ttl_days * 86_400
        self._put_new = redis.register_script(_PUT_NEW)
        self._newest = redis.register_script(_NEWEST)
        # A single server takes any keys in one script call; a cluster only one slot's.
        self.one_slot = not isinstance(redis, RedisCluster)
        self._replace = redis.register_script(_REPLACE)
        self._count = redis.register_script(_COUNT_SURVEYS)
        self._rated = redis.register_script(_RATED)
        self._get_for_rating = redis.register_script(_GET_FOR_RATING)

    # -- raising ------------------------------------------------------------------

    async def rated_contacts(self, wanted: Sequence[RatedLookup]) -> list[Rated]:
        """For each lookup: the customer's newest entries and the rated entry (see
        `_RATED`), and the alert registered as waiting for its contact where the
        contact is not stored: one script call each, one round trip."""
        if not wanted:
            return []
        replies = await run_scripts(self.redis, [self._rated_call(w) for w in wanted])
        return [Rated([orjson.loads(b) for b in reply[1:]],
                      None if reply[0] is None else orjson.loads(reply[0]))
                for reply in replies]

    async def newest(self, customer_ids: Sequence[str], size: int) -> list[list[TimelineEntry]]:
        """Each customer's newest `size` entries, newest first: one script call per
        batch (per slot on a cluster), for alerts that rate no contact."""
        if not customer_ids:
            return []
        groups = slot_groups(range(len(customer_ids)),
                             lambda n: self.keys.timeline(customer_ids[n]), ALERTS_PER_CALL,
                             one_slot=self.one_slot)
        replies = await run_scripts(self.redis, [
            (self._newest, [key for n in group for key in (self.keys.timeline(customer_ids[n]),
                                                           self.keys.entries(customer_ids[n]))],
             [size]) for group in groups])
        found: dict[int, list[TimelineEntry]] = {}
        for group, got in zip(groups, replies, strict=True):
            for n, bodies in zip(group, got, strict=True):
                found[n] = [orjson.loads(body) for body in bodies if body is not None]
        return [found[n] for n in range(len(customer_ids))]

    def _rated_call(self, w: RatedLookup) -> ScriptCall:
        cid, contact_id = w.customer_id, w.contact_id or ""
        # The needles are computed here, where orjson spells them as the stored JSON does.
        found_by = [orjson.dumps(contact_id)[1:-1],
                    *(part for triple in needles(contact_id) for part in triple)
                    ] if contact_id else []
        return (self._rated,
                [self.keys.timeline(cid), self.keys.entries(cid), self.keys.rated_waits(cid)],
                [w.context_size, SCAN_CHUNK, contact_id, w.alert_id or "", RATED_WAIT_TTL_S,
                 *found_by])

    async def get_for_rating(self, alert_id: str) -> Alert | None:
        """The alert, to give it its rated contact; when it is not stored yet (its survey
        registered the wait a moment ago), marks it for `rated_early`."""
        [reply] = await run_scripts(self.redis, [
            (self._get_for_rating, [self.keys.alert(alert_id), self.keys.rated_early(alert_id)],
             [RATED_EARLY_TTL_S])])
        return None if reply is None else orjson.loads(reply)

    async def rated_early(self, alert_ids: Sequence[str]) -> list[bool]:
        """Whether the rated contact of each (just stored) alert arrived while the alert
        was not stored yet: `get_for_rating` found no alert for it."""
        pipe = self.redis.pipeline(transaction=False)
        for alert_id in alert_ids:
            pipe.exists(self.keys.rated_early(alert_id))
        return [bool(n) for n in await pipe.execute()]

    async def move_waits(self, from_id: str, to_id: str) -> list[RatedWait]:
        """Waits of a provisional profile's alerts, moved to the customer it was linked to
        (where its surveys now are); those whose contact the customer already has."""
        waits = await self.redis.hgetall(self.keys.rated_waits(from_id))
        if not waits:
            return []
        pending = [(text(ref), alert_id) for ref, ids in waits.items()
                   for alert_id in text(ids).split()]
        found = await self.rated_contacts([RatedLookup(to_id, ref, 1, alert_id)
                                           for ref, alert_id in pending])
        await self.redis.hdel(self.keys.rated_waits(from_id), *waits)
        # retry: this may be a repeat after a crash, when the update may be done but unsent.
        return [RatedWait(to_id, ref, (alert_id,), retry=True)
                for (ref, alert_id), rated in zip(pending, found, strict=True)
                if rated.contact is not None]

    async def entries(self, customer_id: str, event_ids: Sequence[str]
                      ) -> list[TimelineEntry | None]:
        bodies = await self.redis.hmget(self.keys.entries(customer_id), list(event_ids))
        return [None if b is None else orjson.loads(b) for b in bodies]

    async def put_new(self, alerts: Sequence[Alert], raised_ms: int, ack_timeout_ms: int
                      ) -> list[tuple[AddResult, Alert]]:
        """Store raised alerts unless already there; index them for lookup and escalation.

        Returns each alert's outcome with the alert as stored (the earlier one
        when it was already there).
        """
        if not alerts:
            return []
        groups = slot_groups(alerts, lambda a: self.keys.alert(a["alert_id"]), ALERTS_PER_CALL,
                             one_slot=self.one_slot)
        replies = await run_scripts(self.redis, [
            (self._put_new, [self.keys.alert(a["alert_id"]) for a in group],
             [jsonbytes.dumps(a) for a in group]) for group in groups])
        outcome = {id(a): _outcome(reply, a) for group, got in zip(groups, replies, strict=True)
                   for a, reply in zip(group, got, strict=True)}
        results = [outcome[id(a)] for a in alerts]
        # The index in as few commands as there are customers (a command's cost in the
        # client is most of an alert's).
        by_customer: dict[str, list[str]] = {}
        recent: dict[str, int] = {}
        due: dict[str, int] = {}
        for alert, (result, _) in zip(alerts, results, strict=True):
            if result is AddResult.DUPLICATE:
                continue
            by_customer.setdefault(alert["customer_id"], []).append(alert["alert_id"])
            recent[alert["alert_id"]] = raised_ms
            if result is AddResult.NEW:
                due[alert["alert_id"]] = raised_ms + ack_timeout_ms
        pipe = self.redis.pipeline(transaction=False)
        for customer_id, ids in by_customer.items():
            pipe.sadd(self.keys.customer_alerts(customer_id), *ids)
        if recent:
            pipe.zadd(self.keys.alerts_recent(), recent, nx=True)
        if due:
            pipe.zadd(self.keys.alerts_due(), due, nx=True)
        pipe.zremrangebyrank(self.keys.alerts_recent(), 0, -RECENT_ALERTS_KEPT - 1)
        await pipe.execute()
        return results

    async def index_again(self, alerts: Sequence[Alert]) -> None:
        """Index stored alerts as `put_new` does, in case a crash came between the store
        and the index (idempotent: sets and NX adds); for the redelivery of their batch."""
        if not alerts:
            return
        pipe = self.redis.pipeline(transaction=False)
        for alert in alerts:
            pipe.sadd(self.keys.customer_alerts(alert["customer_id"]), alert["alert_id"])
            raised = parse_ms(alert["raised_at"])
            if raised is not None:
                pipe.zadd(self.keys.alerts_recent(), {alert["alert_id"]: raised}, nx=True)
            deadline = parse_ms(alert.get("ack_deadline"))
            if alert["status"] == OPEN and deadline is not None:
                pipe.zadd(self.keys.alerts_due(), {alert["alert_id"]: deadline}, nx=True)
        await pipe.execute()

    # -- reading and changing -------------------------------------------------------

    async def get_many(self, alert_ids: Sequence[str]) -> list[Alert | None]:
        if not alert_ids:
            return []
        keys = [self.keys.alert(alert_id) for alert_id in alert_ids]
        if self.one_slot:  # one command; a cluster refuses keys of several slots in one
            found = await self.redis.mget(keys)
        else:
            pipe = self.redis.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            found = await pipe.execute()
        return [None if b is None else orjson.loads(b) for b in found]

    async def get(self, alert_id: str) -> Alert | None:
        return (await self.get_many([alert_id]))[0]

    async def replace(self, alert: Alert, expected_version: int) -> bool:
        """Write `alert` if nobody changed it since `expected_version` was read."""
        return (await self.replace_many([(alert, expected_version)]))[0]

    async def replace_many(self, changes: Sequence[tuple[Alert, int]]) -> list[bool]:
        """`replace` for each (alert, expected version), in one round trip."""
        if not changes:
            return []
        groups = slot_groups(changes, lambda c: self.keys.alert(c[0]["alert_id"]),
                             ALERTS_PER_CALL, one_slot=self.one_slot)
        replies = await run_scripts(self.redis, [
            (self._replace, [self.keys.alert(alert["alert_id"]) for alert, _ in group],
             [part for alert, version in group for part in (version, jsonbytes.dumps(alert))])
            for group in groups])
        done = {id(c): reply == 1 for group, got in zip(groups, replies, strict=True)
                for c, reply in zip(group, got, strict=True)}
        return [done[id(c)] for c in changes]

    async def recent(self, limit: int) -> list[Alert]:
        """The most recently raised alerts, newest first."""
        ids = [text(i) for i in cast(list[bytes], await self.redis.zrevrange(
            self.keys.alerts_recent(), 0, limit - 1))]
        return [a for a in await self.get_many(ids) if a is not None]

    async def of_customer(self, customer_id: str) -> list[Alert]:
        """Every alert of the customer that is still stored, in no particular order."""
        members = await self.redis.smembers(self.keys.customer_alerts(customer_id))
        found = await self.get_many(sorted(text(m) for m in members))
        return [a for a in found if a is not None]

    async def refile(self, alert_ids: Sequence[str], source: str, to: str) -> None:
        """Move alert ids from one customer's set to another's (the alerts themselves are
        rewritten with `replace_many`); waits for rated contacts go too."""
        if not alert_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.customer_alerts(to), *alert_ids)
        pipe.srem(self.keys.customer_alerts(source), *alert_ids)
        await pipe.execute()

    async def erase(self, alert_ids: Sequence[str], customer_id: str) -> None:
        """Delete these alerts of the customer (the parts of a merge being erased)."""
        if not alert_ids:
            return
        pipe = self.redis.pipeline(transaction=False)
        for alert_id in alert_ids:
            pipe.delete(self.keys.alert(alert_id), self.keys.rated_early(alert_id))
        pipe.zrem(self.keys.alerts_recent(), *alert_ids)
        pipe.zrem(self.keys.alerts_due(), *alert_ids)
        pipe.srem(self.keys.customer_alerts(customer_id), *alert_ids)
        await pipe.execute()

    async def erase_customer(self, customer_id: str) -> list[str]:
        """Delete the customer's alerts (they quote the customer's interactions) and take
        them out of both indexes, and how they rated agents; returns the alerts' ids."""
        members = await self.redis.smembers(self.keys.customer_alerts(customer_id))
        ids = sorted(text(i) for i in members)
        pipe = self.redis.pipeline(transaction=False)
        for alert_id in ids:
            pipe.delete(self.keys.alert(alert_id), self.keys.rated_early(alert_id))
        if ids:
            pipe.zrem(self.keys.alerts_recent(), *ids)
            pipe.zrem(self.keys.alerts_due(), *ids)
        pipe.delete(self.keys.customer_alerts(customer_id), self.keys.rated_waits(customer_id))
        # What routing remembers of the customer's surveys goes with them (store.agents).
        pipe.delete(self.keys.rated_agents(customer_id))
        await pipe.execute()
        return ids

    async def due(self, now_ms: int, limit: int = 500) -> list[str]:
        ids = cast(list[bytes], await self.redis.zrangebyscore(
            self.keys.alerts_due(), "-inf", now_ms, start=0, num=limit))
        return [text(i) for i in ids]

    async def not_due(self, alert_ids: Sequence[str]) -> None:
        if alert_ids:
            await self.redis.zrem(self.keys.alerts_due(), *alert_ids)

    # -- survey counters -------------------------------------------------------------

    async def count_surveys(self, counts: Sequence[SurveyCount]) -> None:
        """Count each survey once in its hour, with its tallies: one script call per hour,
        one round trip.  On a cluster the tallies live in other slots than the hour's
        counters: they follow for the surveys the script counted (one more round trip;
        a crash between the two loses them, never counts them twice)."""
        if not counts:
            return
        by_hour: dict[str, list[SurveyCount]] = {}
        for c in counts:
            by_hour.setdefault(c.hour, []).append(c)
        replies = await run_scripts(self.redis, [self._count_call(hour, group)
                                                 for hour, group in by_hour.items()])
        if self.one_slot:
            return
        counted = {text(event_id) for reply in replies for event_id in reply}
        tallies = [t for c in counts if c.event_id in counted for t in c.also]
        if tallies:
            pipe = self.redis.pipeline(transaction=False)
            for t in tallies:
                for name, amount in t.fields.items():
                    pipe.hincrby(t.key, name, amount)
            for key, ttl_s in {t.key: t.ttl_s for t in tallies}.items():
                pipe.expire(key, ttl_s)
            await pipe.execute()

    def _count_call(self, hour: str, group: Sequence[SurveyCount]) -> ScriptCall:
        others: dict[str, int] = {}  # key -> its number in the call (1: KEYS[3])
        ttls: list[int] = []
        body: list[bytes | str | int] = []
        for c in group:
            body += (c.event_id, len(c.fields))
            for pair in c.fields.items():
                body += pair
            tallies = c.also if self.one_slot else ()
            body.append(len(tallies))
            for t in tallies:
                if t.key not in others:
                    others[t.key] = len(others) + 1
                    ttls.append(t.ttl_s)
                body += (others[t.key], len(t.fields))
                for pair in t.fields.items():
                    body += pair
        return (self._count, [self.keys.survey_counters(hour), self.keys.survey_counted(hour),
                              *others],
                [self.counters_ttl_s, COUNTED_IDS_TTL_S, len(others), *ttls, *body])

    async def counters(self, buckets: Sequence[str]) -> dict[str, dict[bytes, bytes]]:
        pipe = self.redis.pipeline(transaction=False)
        for bucket in buckets:
            pipe.hgetall(self.keys.survey_counters(bucket))
        return dict(zip(buckets, await pipe.execute(), strict=True))


def _outcome(reply: object, alert: Alert) -> tuple[AddResult, Alert]:
    result, stored = classify_insert(reply, alert.get("source"))
    # What the script found under the alert's key: the alert stored earlier.
    return result, alert if stored is None else cast(Alert, stored)
