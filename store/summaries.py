"""The summary feed's Redis side: what it keeps per customer, and the reads for a summary.

Kept here (keys in `store.keys`, each with the customer's hash tag): the newest
survey, the ids of bottom-2-box surveys, the highest version of each alert with
its status, and an erasure marker.  Contacts are not kept twice: they are read
from the worker's timeline (`Keys.timeline` / `Keys.entries`).

Merges (see `consumers.summary`): a customer merged into another (the worker's
`Keys.merged_into` is set) keeps no state here: `forget_merged` deletes it, and the
write scripts refuse that customer's surveys and alerts.  A survey or alert filed
under another customer (`filed_under`, it came with a merge) is counted only while
it is still in this customer's timeline (`Keys.timeline`) or alerts
(`Keys.customer_alerts`), so a copy read after an unmerge took it back is ignored.
`take_back` removes from a root what an unmerge gave back to one of its parts.

Every write is idempotent, so a redelivered batch changes nothing: the survey is
replaced only by a newer one (occurred_at, then event_id), bottom-2-box ids are a
set, and an alert's status only moves to a higher version (cx.alerts.v1 is
at-least-once and two workers may publish one alert's versions out of order).
A batch's writes are one pipeline and its reads another: one round trip each,
whatever the batch size (on a Redis Cluster, one call after the other: store.scripts).

The erasure marker: see `consumers.summary` for why it exists and which time it holds.
Each write script checks it, so a late message cannot bring erased data back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson

from domain.contacts import parse_ms
from kernel.redis_client import RedisClient
from store.keys import Keys
from store.scripts import ScriptCall, run_scripts
from store.timeline import is_survey_body

# How long an erasure marker is kept: a message published before an erasure and
# read more than this later (the feed stopped for over a week) is no longer caught.
ERASURE_MARK_MS = 7 * 86_400_000

# KEYS: marker, survey hash, bottom-2-box set, alerts hash.  ARGV: erasure ms, marker TTL ms.
# The marker keeps the latest erasure time; the state goes whatever the time.
_ERASE = """
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) >= tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
return 1
"""

# KEYS: merge, survey hash, bottom-2-box set, alerts hash.  Deletes the state of a
# customer that is (still) merged into another; 1 when it did, 0 when not merged.
_FORGET_MERGED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return 1
"""

# KEYS: marker, survey hash, bottom-2-box set, merge, timeline zset.  ARGV: the entry's
# accepted ms, occurred ms, event_id, last_survey JSON, '1' when bottom-2-box, '1' when
# filed under another customer.  0: ignored (from before an erasure, the customer is
# merged, or a moved survey no longer in its timeline), 1: applied (or already there).
_SURVEY = """
local erased = redis.call('GET', KEYS[1])
if erased and tonumber(ARGV[1]) <= tonumber(erased) then return 0 end
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if ARGV[6] == '1' and not redis.call('ZSCORE', KEYS[5], ARGV[3]) then return 0 end
if ARGV[5] == '1' then redis.call('SADD', KEYS[3], ARGV[3]) end
local current = redis.call('HMGET', KEYS[2], 'ms', 'id')
if current[1] then
  local ms, newer = tonumber(current[1]), tonumber(ARGV[2])
  if ms > newer or (ms == newer and current[2] >= ARGV[3]) then return 1 end
end
redis.call('HSET', KEYS[2], 'ms', ARGV[2], 'id', ARGV[3], 'survey', ARGV[4])
return 1
"""

# KEYS: marker, alerts hash, merge, the customer's alert ids (set).  ARGV: the alert
# event's ms, alert_id, version, status, '1' when filed under another customer.
_ALERT = """
local erased = redis.call('GET', KEYS[1])
if erased and tonumber(ARGV[1]) <= tonumber(erased) then return 0 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
if ARGV[5] == '1' and redis.call('SISMEMBER', KEYS[4], ARGV[2]) == 0 then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version >= tonumber(ARGV[3]) then return 1 end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. ':' .. ARGV[4])
return 1
"""

# KEYS: timeline zset, entries hash, marker, survey hash, bottom-2-box set, alerts hash,
# merge.  ARGV: oldest occurred ms of the window.  Everything one summary needs, in one
# call: {marker, last survey JSON, bottom-2-box count, alerts (flat), window entries
# newest first, 1 when the customer is merged into another}.
_READ = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', ARGV[1])
local bodies = {}
for i = 1, #ids, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for _, body in ipairs(part) do bodies[#bodies + 1] = body end
end
return {redis.call('GET', KEYS[3]), redis.call('HGET', KEYS[4], 'survey'),
        redis.call('SCARD', KEYS[5]), redis.call('HGETALL', KEYS[6]), bodies,
        redis.call('EXISTS', KEYS[7])}
"""

# KEYS: timeline zset, entries hash.  ARGV: window start ms (exclusive upper bound),
# offset, count.  A page of the entries older than the window, newest first.
_OLDER = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf',
                       'LIMIT', ARGV[2], ARGV[3])
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
"""

# KEYS: timeline zset, alert ids set (of a customer an unmerge gave entries back to).
# {its timeline's event ids, its alert ids}.
_OWNED = """
return {redis.call('ZRANGE', KEYS[1], 0, -1), redis.call('SMEMBERS', KEYS[2])}
"""

# KEYS: bottom-2-box set, alerts hash, survey hash, timeline zset, entries hash, marker
# (of the root).  ARGV: n, n event ids given back, then the alert ids given back.
# Takes them out of the root's state.  When the root's newest survey is one of those
# entries: {its event_id, the marker, up to 5 survey bodies of the root's
# remaining timeline, newest first} to choose a new one from (store.timeline's survey
# recognition, checked again once parsed); otherwise {}.
_TAKE_BACK = """
local n = tonumber(ARGV[1])
local given = {}
for i = 2, n + 1 do given[ARGV[i]] = true end
for i = 2, n + 1, 1000 do
  redis.call('SREM', KEYS[1], unpack(ARGV, i, math.min(i + 999, n + 1)))
end
for i = n + 2, #ARGV, 1000 do
  redis.call('HDEL', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
local current = redis.call('HGET', KEYS[3], 'id')
if not current or not given[current] then return {} end
local found, start = {}, 0
while #found < 5 do
  local ids = redis.call('ZREVRANGE', KEYS[4], start, start + 199)
  if #ids == 0 then break end
  local bodies = redis.call('HMGET', KEYS[5], unpack(ids))
  for i = 1, #ids do
    local body = bodies[i]
    if body and not given[ids[i]] and string.find(body, '"channel":"survey"', 1, true) then
      found[#found + 1] = body
      if #found >= 5 then break end
    end
  end
  start = start + 200
end
return {current, redis.call('GET', KEYS[6]) or '', found}
"""

# KEYS: survey hash.  ARGV: the event_id it held when read, then (ms, id, survey JSON)
# of its replacement, or nothing to clear it.  Only while it still holds that survey
# (a newer one written meanwhile stays).
_REPLACE_SURVEY = """
if redis.call('HGET', KEYS[1], 'id') ~= ARGV[1] then return 0 end
if #ARGV == 1 then redis.call('DEL', KEYS[1]) return 1 end
redis.call('HSET', KEYS[1], 'ms', ARGV[2], 'id', ARGV[3], 'survey', ARGV[4])
return 1
"""



@dataclass(frozen=True, slots=True)
class Erasure:
    customer_id: str
    at_ms: int  # the erasure time the marker holds


@dataclass(frozen=True, slots=True)
class SurveySeen:
    customer_id: str
    at_ms: int  # when the worker accepted it (compared with the erasure marker)
    occurred_ms: int
    event_id: str
    survey: dict  # the summary's last_survey object
    bottom_2_box: bool
    moved: bool = False  # filed under another customer (`filed_under`): came with a merge


@dataclass(frozen=True, slots=True)
class AlertSeen:
    customer_id: str
    at_ms: int  # when the alert's latest event happened (compared with the erasure marker)
    alert_id: str
    version: int
    status: str
    moved: bool = False  # filed under another customer (`filed_under`): came with a merge


@dataclass(frozen=True, slots=True)
class Unmerge:
    customer_id: str  # the customer given back its entries and alerts
    root: str  # the customer they were taken back from


@dataclass(slots=True)
class CustomerState:
    """What a summary is computed from, as read in one call."""

    customer_id: str
    erased_ms: int | None
    last_survey: dict | None
    bottom_2_box_count: int
    alerts: dict[str, str]  # alert_id -> status (highest version seen)
    # Timeline entries newest first, surveys left out (they are no contacts).
    entries: list[dict] = field(default_factory=list)
    merged: bool = False  # merged into another customer: no summary of its own

    def keeps(self, entry: dict) -> bool:
        """False for an entry accepted before the customer's erasure (see consumers.summary)."""
        if self.erased_ms is None:
            return True
        accepted = parse_ms(entry.get("accepted_at"))
        return accepted is not None and accepted > self.erased_ms


class SummaryState:
    def __init__(self, redis: RedisClient, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self._erase = redis.register_script(_ERASE)
        self._survey = redis.register_script(_SURVEY)
        self._alert = redis.register_script(_ALERT)
        self._read = redis.register_script(_READ)
        self._older = redis.register_script(_OLDER)
        self._forget_merged = redis.register_script(_FORGET_MERGED)
        self._owned = redis.register_script(_OWNED)
        self._take_back = redis.register_script(_TAKE_BACK)
        self._replace_survey = redis.register_script(_REPLACE_SURVEY)

    def state_keys(self, customer_id: str) -> list[str]:
        """The keys an erasure deletes (the marker stays, it guards the erasure)."""
        k = self.keys
        return [k.summary_survey(customer_id), k.summary_bottom_2_box(customer_id),
                k.summary_alerts(customer_id)]

    async def apply(self, erasures: Sequence[Erasure], surveys: Sequence[SurveySeen],
                    alerts: Sequence[AlertSeen]) -> list[int]:
        """Write a batch in one round trip: erasures first, so that the batch's own
        messages from before an erasure are ignored.  Returns, per survey then alert,
        1 when applied (or already there) and 0 when ignored as from before an erasure."""
        if not (erasures or surveys or alerts):
            return []
        k = self.keys
        calls: list[ScriptCall] = [
            (self._erase, [k.summary_erased(e.customer_id), *self.state_keys(e.customer_id)],
             [e.at_ms, ERASURE_MARK_MS]) for e in erasures]
        calls += [
            (self._survey, [k.summary_erased(s.customer_id), k.summary_survey(s.customer_id),
                            k.summary_bottom_2_box(s.customer_id), k.merged_into(s.customer_id),
                            k.timeline(s.customer_id)],
             [s.at_ms, s.occurred_ms, s.event_id, orjson.dumps(s.survey), int(s.bottom_2_box),
              int(s.moved)])
            for s in surveys]
        calls += [
            (self._alert, [k.summary_erased(a.customer_id), k.summary_alerts(a.customer_id),
                           k.merged_into(a.customer_id), k.customer_alerts(a.customer_id)],
             [a.at_ms, a.alert_id, a.version, a.status, int(a.moved)]) for a in alerts]
        replies = await run_scripts(self.redis, calls)
        return [int(r) for r in replies[len(erasures):]]

    async def forget_merged(self, customer_ids: Sequence[str]) -> list[bool]:
        """Delete the state of these customers, each only if it is still merged into
        another (an unmerge since then leaves its rebuilt state alone); per customer,
        whether it was.  One round trip."""
        if not customer_ids:
            return []
        replies = await run_scripts(self.redis, [
            (self._forget_merged, [self.keys.merged_into(cid), *self.state_keys(cid)], [])
            for cid in customer_ids])
        return [bool(int(r)) for r in replies]

    async def take_back(self, unmerges: Sequence[Unmerge],
                        survey_of: Callable[[dict], dict | None]) -> None:
        """Take out of each root's state what an unmerge gave back to the customer: the
        bottom-2-box surveys among the entries now in the customer's timeline, its alerts,
        and the root's newest survey if it is one of them (replaced by the newest survey
        left in the root's timeline, or cleared).  `survey_of` makes a last_survey object
        of a survey entry (None when unusable).  One round trip to read what the
        customers hold, one to take it out, and one more only when a newest survey goes."""
        if not unmerges:
            return
        k = self.keys
        owned = await run_scripts(self.redis, [
            (self._owned, [k.timeline(u.customer_id), k.customer_alerts(u.customer_id)], [])
            for u in unmerges])
        given: dict[str, tuple[dict[bytes, None], dict[bytes, None]]] = {}
        for u, (entry_ids, alert_ids) in zip(unmerges, owned, strict=True):
            entries, alerts = given.setdefault(u.root, ({}, {}))
            entries.update(dict.fromkeys(entry_ids))
            alerts.update(dict.fromkeys(alert_ids))
        roots = [root for root, (entries, alerts) in given.items() if entries or alerts]
        if not roots:
            return
        replies = await run_scripts(self.redis, [
            (self._take_back, [k.summary_bottom_2_box(r), k.summary_alerts(r),
                               k.summary_survey(r), k.timeline(r), k.entries(r),
                               k.summary_erased(r)],
             [len(given[r][0]), *given[r][0], *given[r][1]]) for r in roots])
        replacements: list[ScriptCall] = []
        for root, reply in zip(roots, replies, strict=True):
            if not reply:
                continue
            old_id, marker, bodies = reply
            erased = int(marker) if marker else None
            args: list[bytes | str | int] = [old_id]
            for body in bodies:
                entry = orjson.loads(body)
                accepted = parse_ms(entry.get("accepted_at"))
                survey = survey_of(entry) if entry.get("channel") == "survey" else None
                occurred = parse_ms(entry.get("occurred_at"))
                if survey is None or occurred is None or (
                        erased is not None and (accepted is None or accepted <= erased)):
                    continue
                args += [occurred, str(entry.get("event_id")), orjson.dumps(survey)]
                break
            replacements.append((self._replace_survey, [k.summary_survey(root)], args))
        if replacements:
            await run_scripts(self.redis, replacements)

    async def read(self, customer_ids: Sequence[str], since_ms: int) -> list[CustomerState]:
        """Each customer's state and timeline entries occurred since `since_ms` (or later),
        newest first, without surveys or entries from before an erasure; one round trip."""
        if not customer_ids:
            return []
        k = self.keys
        replies = await run_scripts(self.redis, [
            (self._read, [k.timeline(cid), k.entries(cid), k.summary_erased(cid),
                          k.summary_survey(cid), k.summary_bottom_2_box(cid),
                          k.summary_alerts(cid), k.merged_into(cid)], [since_ms])
            for cid in customer_ids])
        states = []
        for cid, (marker, survey, b2b, alerts, bodies, merged) in zip(customer_ids, replies,
                                                                       strict=True):
            state = CustomerState(
                cid, None if marker is None else int(marker),
                None if survey is None else orjson.loads(survey), int(b2b),
                {alerts[i].decode(): alerts[i + 1].decode().partition(":")[2]
                 for i in range(0, len(alerts), 2)}, merged=bool(int(merged)))
            state.entries = self._kept(state, bodies)
            states.append(state)
        return states

    async def older(self, states: Sequence[CustomerState], before_ms: int, offset: int,
                    count: int) -> list[tuple[list[dict], bool]]:
        """For each state, a page of its timeline entries occurred before `before_ms`,
        newest first (as `read` leaves them out), and whether more may follow; one round trip."""
        replies = await run_scripts(self.redis, [
            (self._older, [self.keys.timeline(s.customer_id), self.keys.entries(s.customer_id)],
             [before_ms, offset, count]) for s in states])
        return [(self._kept(s, bodies), len(bodies) == count)
                for s, bodies in zip(states, replies, strict=True)]

    @staticmethod
    def _kept(state: CustomerState, bodies: Sequence[bytes | None]) -> list[dict]:
        # Parsing is most of a read's cost, and surveys are no contacts: they are
        # recognised unparsed (store.timeline.is_survey_body).
        # The worker writes an id and its body atomically, so None is not expected.
        entries = [orjson.loads(b) for b in bodies if b is not None and not is_survey_body(b)]
        return entries if state.erased_ms is None else [e for e in entries if state.keeps(e)]
