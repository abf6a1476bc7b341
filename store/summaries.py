"""The summary feed's Redis side: what it keeps per customer, and the reads for a summary.

Kept here (keys in `store.keys`, each with the customer's hash tag): the newest
survey, the ids of bottom-2-box surveys, the highest version of each alert with
its status, and an erasure marker.  Contacts are not kept twice: they are read
from the worker's timeline (`Keys.timeline` / `Keys.entries`).

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

from collections.abc import Sequence
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

# KEYS: marker, survey hash, bottom-2-box set.  ARGV: the entry's accepted ms, occurred
# ms, event_id, last_survey JSON, '1' when bottom-2-box.  0: ignored (from before an
# erasure), 1: applied (or already there).
_SURVEY = """
local erased = redis.call('GET', KEYS[1])
if erased and tonumber(ARGV[1]) <= tonumber(erased) then return 0 end
if ARGV[5] == '1' then redis.call('SADD', KEYS[3], ARGV[3]) end
local current = redis.call('HMGET', KEYS[2], 'ms', 'id')
if current[1] then
  local ms, newer = tonumber(current[1]), tonumber(ARGV[2])
  if ms > newer or (ms == newer and current[2] >= ARGV[3]) then return 1 end
end
redis.call('HSET', KEYS[2], 'ms', ARGV[2], 'id', ARGV[3], 'survey', ARGV[4])
return 1
"""

# KEYS: marker, alerts hash.  ARGV: the alert event's ms, alert_id, version, status.
_ALERT = """
local erased = redis.call('GET', KEYS[1])
if erased and tonumber(ARGV[1]) <= tonumber(erased) then return 0 end
local current = redis.call('HGET', KEYS[2], ARGV[2])
if current then
  local version = tonumber(string.match(current, '^(%d+):'))
  if version and version >= tonumber(ARGV[3]) then return 1 end
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3] .. ':' .. ARGV[4])
return 1
"""

# KEYS: timeline zset, entries hash, marker, survey hash, bottom-2-box set, alerts hash.
# ARGV: oldest occurred ms of the window.  Everything one summary needs, in one call:
# {marker, last survey JSON, bottom-2-box count, alerts (flat), window entries newest first}.
_READ = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', ARGV[1])
local bodies = {}
for i = 1, #ids, 1000 do
  local part = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for _, body in ipairs(part) do bodies[#bodies + 1] = body end
end
return {redis.call('GET', KEYS[3]), redis.call('HGET', KEYS[4], 'survey'),
        redis.call('SCARD', KEYS[5]), redis.call('HGETALL', KEYS[6]), bodies}
"""

# KEYS: timeline zset, entries hash.  ARGV: window start ms (exclusive upper bound),
# offset, count.  A page of the entries older than the window, newest first.
_OLDER = """
local ids = redis.call('ZREVRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '-inf',
                       'LIMIT', ARGV[2], ARGV[3])
if #ids == 0 then return {} end
return redis.call('HMGET', KEYS[2], unpack(ids))
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


@dataclass(frozen=True, slots=True)
class AlertSeen:
    customer_id: str
    at_ms: int  # when the alert's latest event happened (compared with the erasure marker)
    alert_id: str
    version: int
    status: str


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
                            k.summary_bottom_2_box(s.customer_id)],
             [s.at_ms, s.occurred_ms, s.event_id, orjson.dumps(s.survey), int(s.bottom_2_box)])
            for s in surveys]
        calls += [
            (self._alert, [k.summary_erased(a.customer_id), k.summary_alerts(a.customer_id)],
             [a.at_ms, a.alert_id, a.version, a.status]) for a in alerts]
        replies = await run_scripts(self.redis, calls)
        return [int(r) for r in replies[len(erasures):]]

    async def read(self, customer_ids: Sequence[str], since_ms: int) -> list[CustomerState]:
        """Each customer's state and timeline entries occurred since `since_ms` (or later),
        newest first, without surveys or entries from before an erasure; one round trip."""
        if not customer_ids:
            return []
        k = self.keys
        replies = await run_scripts(self.redis, [
            (self._read, [k.timeline(cid), k.entries(cid), k.summary_erased(cid),
                          k.summary_survey(cid), k.summary_bottom_2_box(cid),
                          k.summary_alerts(cid)], [since_ms])
            for cid in customer_ids])
        states = []
        for cid, (marker, survey, b2b, alerts, bodies) in zip(customer_ids, replies,
                                                               strict=True):
            state = CustomerState(
                cid, None if marker is None else int(marker),
                None if survey is None else orjson.loads(survey), int(b2b),
                {alerts[i].decode(): alerts[i + 1].decode().partition(":")[2]
                 for i in range(0, len(alerts), 2)})
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
