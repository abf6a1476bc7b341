"""The timeline store in Redis: idempotent, ordered, bounded.

A customer's timeline is two keys sharing the customer's hash tag (see
`store.keys`): a sorted set ordering event ids by `occurred_at` and a hash
holding each entry's JSON.  One Lua script inserts an entry into both and
trims retention atomically, so a worker killed between two commands can never
leave half an entry behind; the same call reports the alerts waiting for the
entry as their rated contact.  Every public method costs one round trip for a
whole batch (a pipeline), whatever the batch size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import cast

import orjson
from redis.asyncio.cluster import RedisCluster

from domain.rated import CONTACT_ID_PAIRS
from domain.records import TimelineEntry
from domain.relevance import Relevance, anchor_of, intents_of
from kernel.redis_client import RedisClient, text
from store.digest import INDEX_CAP, IS_SURVEY_LUA, SURVEYS_COMPLETE, DigestStore
from store.keys import Keys, slot_groups
from store.scripts import ScriptCall, run_scripts

# An entry's body is orjson's compact JSON of a TimelineEntry, whose keys start
# event_id, customer_id, channel (schemas/timeline-entry.v1.json's order, kept by
# the worker and by linking).  The first `"channel":"` in a body is therefore the
# entry's own: ids are JSON strings, whose quotes are escaped.
_CHANNEL_KEY = b'"channel":"'
_SURVEY_VALUE = b'survey"'


def is_survey_body(body: bytes) -> bool:
    """Whether a stored entry is a survey, without parsing it (readers that skip
    surveys save most of their cost this way)."""
    at = body.find(_CHANNEL_KEY)
    return at >= 0 and body.startswith(_SURVEY_VALUE, at + len(_CHANNEL_KEY))


# One call stores many entries (a batch, or the part of it in one cluster slot).
# KEYS: per entry its timeline zset, entries hash, rated-contact waits, merge and survey
# index (store.keys), then the intent index of each intent it is relevant to.
# ARGV: max entries, min score (oldest occurred ms kept), the index's cap, the number k
# of channel-id fields, the survey index's completeness member (SURVEYS_COMPLETE), k
# (field, channel) pairs (domain.rated), then per entry:
# event_id, score (occurred ms), entry JSON, its index anchor (domain.relevance) and the
# number of its intent index keys.
# Replies per entry 1 when inserted, a one-element list holding the customer it is
# merged into when the entry's customer is merged (nothing is written then: the caller
# files it under that customer), else the stored JSON (so the caller can tell our
# own redelivery from a source duplicate without a second round trip), then one list
# of (entry number, ref, alert ids) triples: a survey's contact_id an entry answers
# (its event_id or a channel id) and the alerts that wait for it, for new and already
# stored entries alike (a redelivery after a crash must still update them).  Insert,
# trim and index happen in one script, so a worker killed mid-batch never leaves half
# an entry behind, nor an entry its index does not know.
# The survey index holds every survey's event id (score: occurred ms) and, from the
# moment its timeline was created by this script, the member SURVEYS_COMPLETE (score
# +inf): only then does it list all the timeline's surveys (timelines stored before the
# index existed have surveys it lacks, and the digest scans those as before).
_ADD_ENTRIES = IS_SURVEY_LUA + """
local max_entries = tonumber(ARGV[1])
local too_old = '(' .. ARGV[2]
local index_cap = tonumber(ARGV[3])
local pairs_end = 5 + 2 * tonumber(ARGV[4])
local complete = ARGV[5]
-- In chunks: unpack has a limit, and a lowered CXT_TIMELINE_MAX_ENTRIES drops many.
local function drop(command, key, ids)
  for i = 1, #ids, 1000 do
    redis.call(command, key, unpack(ids, i, math.min(i + 999, #ids)))
  end
end
-- The ids a survey's contact_id may name this entry by: its event_id and its channel's
-- own ids.  Only decoded when the customer has waits at all (rare).
local function refs_of(id, body)
  local refs, seen = {id}, {[id] = true}
  local ok, entry = pcall(cjson.decode, body)
  local payload = ok and type(entry) == 'table' and entry['payload']
  if type(payload) ~= 'table' then return refs end
  for f = 6, pairs_end, 2 do
    local value = payload[ARGV[f]]
    if entry['channel'] == ARGV[f + 1] and type(value) == 'string' and value ~= ''
        and not seen[value] then
      seen[value] = true
      refs[#refs + 1] = value
    end
  end
  return refs
end
local answered = {}
local function waiting(i, waits, id, body)
  if redis.call('EXISTS', waits) == 0 then return end
  local refs = refs_of(id, body)
  local found = redis.call('HMGET', waits, unpack(refs))
  for k = 1, #refs do
    if found[k] then
      answered[#answered + 1] = i
      answered[#answered + 1] = refs[k]
      answered[#answered + 1] = found[k]
    end
  end
end
-- A contact's anchor keeps the newest score of its entries (GT); only a new member makes
-- the index longer, so only then is it cut: to its cap for one new member in eight (by
-- its score: the index holds at most a few more than the cap, the reader takes the
-- newest `cap`), and to the timeline's retention when the timeline itself just lost
-- entries to it (`aged`).
local function index(first, last, score, anchor, aged)
  local trim = tonumber(score) % 8 == 0
  for k = first, last do
    if redis.call('ZADD', KEYS[k], 'GT', score, anchor) == 1 then
      if trim then redis.call('ZREMRANGEBYRANK', KEYS[k], 0, -index_cap - 1) end
      if aged then redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', too_old) end
    end
  end
end
local replies = {}
local kc, a, i = 0, pairs_end + 1, 0
while kc < #KEYS do
  i = i + 1
  local timeline, entries, waits, surveys = KEYS[kc + 1], KEYS[kc + 2], KEYS[kc + 3], KEYS[kc + 5]
  local id, score, body, anchor = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local first, last = kc + 6, kc + 5 + tonumber(ARGV[a + 4])
  local into = redis.call('GET', KEYS[kc + 4])
  if into then
    replies[i] = {into}
  -- HSETNX first: nearly every entry is new, and then it is one command instead of two.
  elseif redis.call('HSETNX', entries, id, body) == 0 then
    replies[i] = redis.call('HGET', entries, id)
  else
    redis.call('ZADD', timeline, score, id)
    local count = redis.call('ZCARD', timeline)
    if count == 1 then redis.call('ZADD', surveys, '+inf', complete) end
    if is_survey(body) then redis.call('ZADD', surveys, score, id) end
    local excess = count - max_entries
    if excess > 0 then
      local oldest = redis.call('ZRANGE', timeline, 0, excess - 1)
      drop('HDEL', entries, oldest)
      drop('ZREM', surveys, oldest)
      redis.call('ZREMRANGEBYRANK', timeline, 0, excess - 1)
    end
    local expired = redis.call('ZRANGEBYSCORE', timeline, '-inf', too_old)
    if #expired > 0 then
      drop('HDEL', entries, expired)
      redis.call('ZREMRANGEBYSCORE', timeline, '-inf', too_old)
      redis.call('ZREMRANGEBYSCORE', surveys, '-inf', too_old)
    end
    index(first, last, score, anchor, #expired > 0)
    replies[i] = 1
  end
  if not into then waiting(i, waits, id, body) end
  kc, a = last, a + 5
end
replies[#replies + 1] = answered
return replies
"""
# Entries per script call: bounds how long one call keeps Redis busy (~5 ms).
ENTRIES_PER_CALL = 500
# INDEX_CAP (store.digest): contacts kept per customer and intent in the intent index.

# KEYS: a timeline zset and its entries hash, then its survey and intent indexes.  ARGV:
# event ids.  Drops both halves and the survey index's members at once; a timeline left
# empty (its customer merged into another) takes its indexes along.  Intent index anchors
# of entries dropped from a timeline that keeps others stay until pushed out: the digest
# finds no entry for them.
_DROP_ENTRIES = """
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
if #KEYS > 2 then
  if redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('DEL', unpack(KEYS, 3))
  else
    redis.call('ZREM', KEYS[3], unpack(ARGV))
  end
end
return 0
"""



class AddResult(Enum):
    NEW = "new"
    # Already stored from this very Kafka record: our own earlier attempt that
    # was not committed.  Publish again (at-least-once on the output topic).
    REDELIVERED = "redelivered"
    # Already stored from another record with the same event_id.
    DUPLICATE = "duplicate"
    # Not stored: the entry's customer is merged into another (`Added.merged`).
    MERGED = "merged"


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class NewEntry:
    customer_id: str
    event_id: str
    occurred_ms: int
    body: bytes  # the entry's JSON, also what is published on cx.timeline.v1
    source: dict
    entry: TimelineEntry  # the same entry, parsed


@dataclass(frozen=True, slots=True)
class RatedWait:
    """Alerts raised before their rated contact arrived, which an entry now answers."""

    customer_id: str  # whose keys hold the contact (and the wait)
    ref: str  # the surveys' contact_id
    alert_ids: tuple[str, ...]
    # The update may have been made already (the entry was stored by this very record
    # before a crash, say), and perhaps not published: publish it again if so.
    retry: bool


@dataclass(frozen=True, slots=True)
class Added:
    results: list[AddResult]
    waits: list[RatedWait]
    # Entry index -> the customer its customer is merged into, for each MERGED result.
    merged: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    entry: TimelineEntry
    occurred_ms: int


class TimelineStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, max_entries: int,
                 max_age_days: int, relevance: Relevance | None = None) -> None:
        self.redis = redis
        self.keys = keys
        # The configured intents (domain.relevance): each stored entry is indexed under
        # those it is relevant to, for the agent view's digest (store.digest).  None: no
        # index is written (a store that only reads, or a test of something else).
        self.relevance: Relevance = relevance or {}
        # The agent view's one-round-trip read of the part of a timeline it shows.
        self.digest = DigestStore(redis, keys)
        self.max_entries = max_entries
        self.max_age_ms = max_age_days * 86_400_000
        self._add = redis.register_script(_ADD_ENTRIES)
        # A single server takes any keys in one script call; a cluster only one slot's.
        self.one_slot = not isinstance(redis, RedisCluster)
        self._drop = redis.register_script(_DROP_ENTRIES)

    async def add(self, entries: Sequence[NewEntry]) -> list[AddResult]:
        """Store entries not stored yet; one round trip, a script call per slot group."""
        return (await self.add_entries(entries)).results

    async def add_entries(self, entries: Sequence[NewEntry]) -> Added:
        """`add`, and the alerts waiting for these entries as their rated contact."""
        if not entries:
            return Added([], [])
        oldest_kept = int(time.time() * 1000) - self.max_age_ms
        groups = slot_groups(entries, lambda e: self.keys.timeline(e.customer_id),
                             ENTRIES_PER_CALL, one_slot=self.one_slot)
        head: list[bytes | str | int] = [self.max_entries, oldest_kept, INDEX_CAP,
                                         len(CONTACT_ID_PAIRS), SURVEYS_COMPLETE,
                                         *(part for pair in CONTACT_ID_PAIRS for part in pair)]
        relevance = self.relevance
        calls: list[ScriptCall] = []
        for group in groups:
            keys: list[str] = []
            args: list[bytes | str | int] = list(head)
            for e in group:
                cid = e.customer_id
                keys += (self.keys.timeline(cid), self.keys.entries(cid),
                         self.keys.rated_waits(cid), self.keys.merged_into(cid),
                         self.keys.survey_index(cid))
                intents = intents_of(e.entry, relevance) if relevance else ()
                anchor = anchor_of(e.entry) if intents else None
                if anchor is None:
                    intents = ()
                keys += (self.keys.intent_index(cid, intent) for intent in intents)
                args += (e.event_id, e.occurred_ms, e.body, anchor or "", len(intents))
            calls.append((self._add, keys, args))
        results: dict[int, AddResult] = {}
        into: dict[int, str] = {}
        waits: list[RatedWait] = []
        for group, replies in zip(groups, await run_scripts(self.redis, calls), strict=True):
            for e, reply in zip(group, replies, strict=False):  # the last reply: answered
                if isinstance(reply, list):
                    results[id(e)] = AddResult.MERGED
                    into[id(e)] = text(reply[0])
                else:
                    results[id(e)] = classify_insert(reply, e.source)[0]
            answered = replies[-1]
            for i, ref, alerts in zip(answered[::3], answered[1::3], answered[2::3],
                                      strict=True):
                e = group[i - 1]
                waits.append(RatedWait(e.customer_id, ref.decode(), tuple(alerts.decode().split()),
                                       retry=results[id(e)] is AddResult.REDELIVERED))
        return Added([results[id(e)] for e in entries], waits,
                     {i: into[id(e)] for i, e in enumerate(entries) if id(e) in into})

    async def read(
        self,
        customer_id: str,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        channel: str | None = None,
        limit: int | None = None,
    ) -> list[TimelineEntry]:
        """Entries newest `occurred_at` first, filtered as asked."""
        ids = cast(list[bytes], await self.redis.zrevrangebyscore(
            self.keys.timeline(customer_id),
            "+inf" if until_ms is None else until_ms,
            "-inf" if since_ms is None else since_ms,
        ))
        if not ids:
            return []
        bodies = await self.redis.hmget(self.keys.entries(customer_id), ids)
        out: list[TimelineEntry] = []
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
    ) -> tuple[list[TimelineEntry], tuple[int, str] | None]:
        """One page, newest first, and the cursor of the next page (None: no more).

        The cursor is the (occurred ms, event_id) of the last entry returned, so
        entries arriving between two page reads shift nothing: no repeats, no gaps.
        Members with equal scores come in descending event_id order in a reverse
        range, which is what makes the pair a total order.
        """
        top = until_ms if before is None else min(before[0], until_ms or before[0])
        scored = cast(list[tuple[bytes, float]], await self.redis.zrevrangebyscore(
            self.keys.timeline(customer_id), "+inf" if top is None else top,
            "-inf" if since_ms is None else since_ms, withscores=True))
        score_of = {eid: int(score) for eid, score in scored
                    if before is None or (int(score), eid.decode()) < before}
        ids = list(score_of)
        out: list[TimelineEntry] = []
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

    async def drop_entries(self, customer_id: str, event_ids: Sequence[str]) -> None:
        """Remove these entries only: one written meanwhile (by a concurrent batch or
        another worker) stays, to be moved by whoever wrote it."""
        if not event_ids:
            return
        keys = [self.keys.timeline(customer_id), self.keys.entries(customer_id),
                *self.index_keys(customer_id)]
        # A script per chunk: a worker killed mid-way never leaves an id in the hash only.
        await run_scripts(self.redis, [(self._drop, keys, list(event_ids[start:start + 1000]))
                                       for start in range(0, len(event_ids), 1000)])

    # -- customer records and erasure --------------------------------------------

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

    def index_keys(self, customer_id: str) -> list[str]:
        """The customer's index keys: the survey index, then one per configured intent."""
        return [self.keys.survey_index(customer_id),
                *(self.keys.intent_index(customer_id, intent) for intent in self.relevance)]

    async def erase(self, customer_id: str) -> None:
        await self.redis.delete(self.keys.timeline(customer_id), self.keys.entries(customer_id),
                                *self.index_keys(customer_id))

    # -- read-only overview for `cxt customers show` ---------------------------

    async def overview(self, customer_id: str) -> CustomerOverview:
        """The record, the entry count and the provisional profiles linked in: one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(self.keys.profile(customer_id))
        pipe.zcard(self.keys.timeline(customer_id))
        pipe.hvals(self.keys.entries(customer_id))
        profile, count, bodies = await pipe.execute()
        linked: dict[str, int] = {}
        for body in bodies:
            origin = orjson.loads(body).get("linked_from")
            if origin:
                linked[origin] = linked.get(origin, 0) + 1
        return CustomerOverview(None if profile is None else orjson.loads(profile), count,
                                linked)


@dataclass(frozen=True, slots=True)
class CustomerOverview:
    record: dict | None  # the latest customer record; None: none (or erased)
    entries: int  # timeline entries stored
    linked: dict[str, int]  # provisional profile id -> entries moved from it


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
