"""The agent view's digest of a timeline: the part of it an agent context can show,
read in one round trip instead of the whole timeline (dashboard.agent_view).

An agent context shows the contacts relevant to the intent first, then those tied to
an open alert, then the newest others, and its prompts and "at risk" banner look back
a few weeks at most (config/agent_context.toml).  So one Lua call returns:

- the core: the newest `newest` entries and every entry since `since_ms` (the days the
  repeat-contact prompt and the "at risk" banner look at), whichever reaches further
  back, plus `margin_ms` before that, so a call whose newest entry is in the core has
  its older entries there too; at most `most` entries;
- beyond the core and since `surveys_since_ms` (the recent-bad-survey prompt's days),
  the surveys only: found in the customer's survey index (store.timeline keeps it in the
  insert's script) when it lists all of them, else told apart in the script by the
  entry's channel, the first `"channel":` of its JSON (see store.timeline.is_survey_body),
  for timelines stored before the index existed;
- for each contact in the intent's index (store.timeline: the newest INDEX_CAP
  contacts directly relevant to it, kept by the worker in the insert's own script)
  that is older than the core, the entries within `margin_ms` of it: the contact's
  other entries, and surveys that rate it soon after;
- the timeline's length (ZCARD), whether the call read all of it, and whether it was
  lean.

Lean (`lean_from` > 0 and the intent's index holds at least that many contacts): the
core is only the days since `since_ms`, not the newest `newest` entries.  A page whose
relevant contacts fill it shows only those, and the index's windows hold them; the
caller reads again without `lean_from` when they turn out not to fill it (index members
whose entries are gone), since then the page shows the newest other contacts too.

Entries come back newest first, in the timeline's own order (score, then event id,
descending, as ZREVRANGEBYSCORE gives them).  An index member whose entries are gone
(retention, an unmerge) just finds none.  `around` reads the entries near given event
ids, for the open alerts whose survey or contact is outside the digest (a second
round trip, only then).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import orjson
from redis.asyncio.cluster import RedisCluster

from domain.records import Alert, TimelineEntry
from kernel.redis_client import RedisClient
from store.keys import Keys

# store.timeline keeps the indexes; it imports this module, so these are set here.
INDEX_CAP = 40
# The survey index's member (score +inf) saying that it lists every survey of its
# timeline; never an event id, which is not empty.
SURVEYS_COMPLETE = ""

# Entries fetched around one old relevant contact, at most: a call's few entries and
# its survey, with room for a busy hour.
WINDOW_MOST = 20

# Whether a stored entry is a survey, in Lua (store.timeline.is_survey_body says why the
# first `"channel":` of its JSON is its own); the insert's script uses it too.
IS_SURVEY_LUA = """
local function is_survey(body)
  local at = string.find(body, '"channel":"', 1, true)
  return at and string.sub(body, at + 11, at + 17) == 'survey"'
end
"""

# KEYS: timeline zset, entries hash, survey index, and the intent's index (absent: no
# intent).  ARGV: newest, contacts since ms, surveys since ms, margin ms, most, window
# most, the index's cap (it may hold a few more: store.timeline), lean from (0: never),
# the survey index's completeness member (SURVEYS_COMPLETE).
# Reply: ZCARD, 1 when the whole timeline was read (else 0), 1 when lean (else 0), then
# (id, score, body) triples: the core (newest first), the surveys zone, the index's
# neighbours.
# The script is built of parts (_CORE, _EMIT) that `_WITH_ALERTS` shares.
_CORE = """
local newest, since, surveys_since = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local margin, most, window_most = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local index_cap, lean_from = tonumber(ARGV[7]), tonumber(ARGV[8])
local total = redis.call('ZCARD', tl)
local lean = ix ~= nil and lean_from > 0 and redis.call('ZCARD', ix) >= lean_from
if lean then newest = 1 end
local core, low
if total <= newest then
  core, low = redis.call('ZREVRANGE', tl, 0, -1, 'WITHSCORES'), nil
else
  low = since
  local nth = redis.call('ZREVRANGE', tl, newest - 1, newest - 1, 'WITHSCORES')
  if nth[2] and tonumber(nth[2]) < low then low = tonumber(nth[2]) end
  low = low - margin
  core = redis.call('ZREVRANGEBYSCORE', tl, '+inf', low, 'WITHSCORES', 'LIMIT', 0, most)
  if #core >= 2 * most then low = tonumber(core[#core]) end
end
local out = {total, (#core / 2 == total) and 1 or 0, lean and 1 or 0}
local ids, scores, seen = {}, {}, {}
local function want(list)
  for n = 1, #list, 2 do
    if not seen[list[n]] then
      seen[list[n]] = true
      ids[#ids + 1], scores[#scores + 1] = list[n], list[n + 1]
    end
  end
end
want(core)
-- Between the core and the surveys' window only surveys matter (the prompts about a
-- recent bad survey): their bodies are read and the others dropped here.  A survey
-- that does not name its contact's channel brings the entries just before it (the
-- prompt names the rated contact's channel).
-- The survey index lists them all once it is complete (store.timeline); a timeline
-- stored before it existed has its zone's bodies scanned instead.
if low and surveys_since < low then
  local indexed = redis.call('ZSCORE', sv, ARGV[9])
  local zone = redis.call('ZREVRANGEBYSCORE', indexed and sv or tl, '(' .. low, surveys_since,
                          'WITHSCORES', 'LIMIT', 0, most)
  local zone_ids = {}
  for n = 1, #zone, 2 do zone_ids[#zone_ids + 1] = zone[n] end
  for start = 1, #zone_ids, 1000 do
    local last = math.min(start + 999, #zone_ids)
    local bodies = redis.call('HMGET', ev, unpack(zone_ids, start, last))
    for k = start, last do
      local body = bodies[k - start + 1]
      if body and is_survey(body) and not seen[zone_ids[k]] then
        seen[zone_ids[k]] = true
        out[#out + 1], out[#out + 2], out[#out + 3] = zone_ids[k], zone[2 * k], body
        if not string.find(body, '"contact_channel":', 1, true) then
          local s = tonumber(zone[2 * k])
          want(redis.call('ZRANGEBYSCORE', tl, s - margin, s, 'WITHSCORES', 'LIMIT', 0,
                          window_most))
        end
      end
    end
  end
end
if ix and low then
  local anchors = redis.call('ZREVRANGE', ix, 0, index_cap - 1, 'WITHSCORES')
  for k = 2, #anchors, 2 do
    local at = tonumber(anchors[k])
    if at - margin < low then
      want(redis.call('ZRANGEBYSCORE', tl, at - margin, at + margin, 'WITHSCORES',
                      'LIMIT', 0, window_most))
    end
  end
end
"""
_EMIT = """
for start = 1, #ids, 1000 do
  local last = math.min(start + 999, #ids)
  local bodies = redis.call('HMGET', ev, unpack(ids, start, last))
  for k = start, last do
    local body = bodies[k - start + 1]
    if body then
      out[#out + 1], out[#out + 2], out[#out + 3] = ids[k], scores[k], body
    end
  end
end
"""
_DIGEST = ("local tl, ev, sv, ix = KEYS[1], KEYS[2], KEYS[3], KEYS[4]\n" + IS_SURVEY_LUA
           + _CORE + _EMIT
           + "return out\n")

# The digest and the customer's alerts in one call, for a single server: each alert is
# a key of its own (store.alerts), in a slot of its own on a cluster, where this cannot
# run.  KEYS: timeline zset, entries hash, the customer's alert ids set, the survey
# index, and the intent's index (absent: no intent).  ARGV: those of _DIGEST, then the
# alert key's text before and after the alert id (store.keys), then the open statuses.
# Reply: {the digest's reply, the alerts' JSON (by alert id)}.  The digest also holds
# the entries around each open alert's survey and rated contact (what
# `agent_view._with_tied` would read in a second round trip): their ids are read from
# the alert's head, the JSON before its first `,"rated_contact":` (the fields
# domain.alerts and domain.negative write first), without decoding the whole alert.
# An alert whose head does not read so brings nothing here; the caller still checks
# that every open alert's entries are there and reads what is missing.
_ALERTS = """
local open = {}
for n = 12, #ARGV do open[ARGV[n]] = true end
local function near(id)
  if type(id) ~= 'string' or id == '' or seen[id] then return end
  local at = redis.call('ZSCORE', tl, id)
  if at then
    at = tonumber(at)
    want(redis.call('ZRANGEBYSCORE', tl, at - margin, at + margin, 'WITHSCORES',
                    'LIMIT', 0, window_most))
  end
end
local function tie(body)
  local cut = string.find(body, ',"rated_contact":', 1, true)
  if not cut then return end
  local ok, head = pcall(cjson.decode, string.sub(body, 1, cut - 1) .. '}')
  if not ok or type(head) ~= 'table' or not open[head['status']] then return end
  near(head['survey_event_id'])
  near(head['contact_id'])
  near(string.match(body, '^{"event_id":"([^"\\\\]+)"', cut + 17))
end
local alert_ids = redis.call('SMEMBERS', al)
table.sort(alert_ids)
local alerts = {}
for _, id in ipairs(alert_ids) do
  local body = redis.call('GET', ARGV[10] .. id .. ARGV[11])
  if body then
    alerts[#alerts + 1] = body
    if low then tie(body) end
  end
end
"""
_WITH_ALERTS = ("local tl, ev, al, sv, ix = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]\n"
                + IS_SURVEY_LUA + _CORE
                + _ALERTS + _EMIT + "return {out, alerts}\n")

# KEYS: timeline zset, entries hash.  ARGV: margin ms, window most, event ids.
# Reply: (id, score, body) triples of the entries within the margin of each id.
_AROUND = """
local tl, ev = KEYS[1], KEYS[2]
local margin, window_most = tonumber(ARGV[1]), tonumber(ARGV[2])
local ids, scores, seen = {}, {}, {}
for a = 3, #ARGV do
  local at = redis.call('ZSCORE', tl, ARGV[a])
  if at then
    at = tonumber(at)
    local near = redis.call('ZRANGEBYSCORE', tl, at - margin, at + margin, 'WITHSCORES',
                            'LIMIT', 0, window_most)
    for n = 1, #near, 2 do
      if not seen[near[n]] then
        seen[near[n]] = true
        ids[#ids + 1], scores[#scores + 1] = near[n], near[n + 1]
      end
    end
  end
end
local out = {}
if #ids == 0 then return out end
local bodies = redis.call('HMGET', ev, unpack(ids))
for k = 1, #ids do
  if bodies[k] then
    out[#out + 1], out[#out + 2], out[#out + 3] = ids[k], scores[k], bodies[k]
  end
end
return out
"""


# Where an alert's `context` starts and ends in its JSON: domain.alerts and
# domain.negative write it after the head and the rated contact, just before `source`.
_CONTEXT_STARTS, _CONTEXT_ENDS = b',"context":[', b'],"source":'


def without_context(body: bytes) -> Alert:
    """A stored alert without its `context` (the newest entries when it was raised: ten
    timeline entries, most of its JSON), which is cut out before decoding.  A cut at
    marks inside an entry (its payload's own keys) either leaves brackets that do not
    balance, which orjson refuses, or leaves the alert's `context` in place: then the
    alert is decoded whole, context and all."""
    start = body.find(_CONTEXT_STARTS)
    end = body.find(_CONTEXT_ENDS, start) if start > 0 else -1
    if end > 0:
        with contextlib.suppress(orjson.JSONDecodeError):
            head = orjson.loads(body[:start] + body[end + 1:])
            if isinstance(head, dict) and "context" not in head:
                return cast(Alert, head)
    return cast(Alert, orjson.loads(body))


Row = tuple[float, bytes, TimelineEntry]  # score (occurred ms), event id, the entry


@dataclass(frozen=True, slots=True)
class Digest:
    rows: list[Row]  # newest first, as the timeline orders them
    total: int  # entries in the whole timeline
    whole: bool  # `rows` are the whole timeline
    lean: bool = False  # the core is the lookback days only (see the module's docstring)

    @property
    def entries(self) -> list[TimelineEntry]:
        return [entry for _, _, entry in self.rows]

    def with_rows(self, more: Sequence[Row]) -> Digest:
        """The digest with entries read since (`DigestStore.around`), in order, once each."""
        have = {event_id for _, event_id, _ in self.rows}
        rows = self.rows + [r for r in more if r[1] not in have]
        return Digest(in_order(rows), self.total, self.whole, self.lean)


def _rows(reply: Sequence[bytes]) -> list[Row]:
    return [(float(reply[k + 1]), reply[k], orjson.loads(reply[k + 2]))
            for k in range(0, len(reply), 3)]


def _digest(reply: Sequence) -> Digest:
    return Digest(in_order(_rows(reply[3:])), int(reply[0]), bool(reply[1]), bool(reply[2]))


def in_order(rows: list[Row]) -> list[Row]:
    """Newest first with ties by event id descending: the order of ZREVRANGEBYSCORE, and
    so of a whole-timeline read."""
    rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
    return rows


class DigestStore:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.keys = keys
        self._digest = redis.register_script(_DIGEST)
        self._with_alerts = redis.register_script(_WITH_ALERTS)
        self._around = redis.register_script(_AROUND)
        # `read_with_alerts` reads keys of other slots: a single server only.
        self.one_slot = not isinstance(redis, RedisCluster)
        before, _, after = keys.alert("\0").partition("\0")
        self._alert_key = (before, after)

    async def read(self, customer_id: str, intent: str | None, *, since_ms: int,
                   surveys_since_ms: int, newest: int, margin_ms: int, most: int,
                   lean_from: int = 0) -> Digest:
        """The digest of the customer's timeline for `intent` (None: no intent index),
        one round trip (see the module's docstring)."""
        keys = [self.keys.timeline(customer_id), self.keys.entries(customer_id),
                self.keys.survey_index(customer_id)]
        if intent is not None:
            keys.append(self.keys.intent_index(customer_id, intent))
        reply = cast(list, await self._digest(
            keys=keys, args=[newest, since_ms, surveys_since_ms, margin_ms, most,
                             WINDOW_MOST, INDEX_CAP, lean_from, SURVEYS_COMPLETE]))
        return _digest(reply)

    async def read_with_alerts(self, customer_id: str, intent: str | None, *, since_ms: int,
                               surveys_since_ms: int, newest: int, margin_ms: int, most: int,
                               open_statuses: Sequence[str], lean_from: int = 0
                               ) -> tuple[Digest, list[Alert]]:
        """`read`, with the customer's stored alerts (as `AlertStore.of_customer` reads
        them, but `without_context`) and the entries around their open ones' survey and
        rated contact, in one round trip: on a single server only (`one_slot`; see
        `_WITH_ALERTS`)."""
        keys = [self.keys.timeline(customer_id), self.keys.entries(customer_id),
                self.keys.customer_alerts(customer_id), self.keys.survey_index(customer_id)]
        if intent is not None:
            keys.append(self.keys.intent_index(customer_id, intent))
        digest, alerts = cast(list, await self._with_alerts(
            keys=keys, args=[newest, since_ms, surveys_since_ms, margin_ms, most,
                             WINDOW_MOST, INDEX_CAP, lean_from, SURVEYS_COMPLETE,
                             *self._alert_key,
                             *open_statuses]))
        return _digest(digest), [without_context(body) for body in alerts]

    async def around(self, customer_id: str, event_ids: Sequence[str], *,
                     margin_ms: int) -> list[Row]:
        """The entries within `margin_ms` of each of these entries (of those still
        stored), for `Digest.with_rows`."""
        if not event_ids:
            return []
        reply = cast(list, await self._around(
            keys=[self.keys.timeline(customer_id), self.keys.entries(customer_id)],
            args=[margin_ms, WINDOW_MOST, *event_ids]))
        return _rows(reply)
