"""Agents, and what routing remembers of surveys, in Redis (read by usecases.routing).

- `cxt:agents`: hash agent_id -> the latest record from cx.agents.v1 (JSON); a
  tombstone deletes the field.  One key for every agent: a hint ranks all of them,
  so they are read in one HGETALL (a contact centre has hundreds, not millions).
- `cxt:{ro:202612}:n`: one UTC month's survey outcomes per agent and intent, fields
  "<agent>|<intent>|n", "...|t2" and "...|b2" (intent "-" when the survey names none).
- `cxt:{C-1}:ragents`: the customer's own surveys per agent, fields "<agent>|n",
  "<agent>|t2", "<agent>|b2"; in the customer's slot, erased with the customer.

Both counters are added by the survey counters' script (store.alerts) under the
survey's once-only mark: on a single server in the same call, so exactly once through
redeliveries; on a cluster, where they live in other slots, by the worker right after
it (a crash between the two loses that batch's outcomes, never counts one twice).

A routing hint reads everything it needs of its callers, and the outcomes of the
agents on the contact's intent in this and the previous month, in one pipeline
(`read`; `read_by_identifier` resolves a phone or e-mail in the same call).  The
agents themselves, and their outcomes per intent, come from `AgentCache`: refreshed
every second in the background, since they change when a supervisor edits a record or
a survey comes, not per call (the outcomes were two-thirds of a hint's Redis time).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError

from domain.alerts import RESOLVED
from domain.identity import CLAIMANT_SEPARATOR, parse_claimants
from domain.routing import Agent, Outcome, agent_from_record
from kernel.redis_client import RedisClient, RedisPipeline, text
from store.alerts import Tally
from store.keys import Keys

log = logging.getLogger(__name__)

# What a hint reads of one caller, in one call: `facts(keys, alert head, alert tail,
# resolved status)`.  Its keys: the customer's merge, timeline, record, preferences,
# alert ids, open negative-interaction alerts and ratings of agents (one slot).  The
# alert keys are the text before and after an alert id (as store.keys spells them).
# Replies {merged into or false, whether the timeline exists, record or false,
# preferences or false, how many alerts are not resolved, how many negative-interaction
# alerts are open, the ratings as HGETALL gives them}.  Alerts quote their context and
# run to kilobytes, and a hint wants only their status: the third field of every alert
# as stored (domain.alerts: alert_id, event, status), so it is read from the head; an
# alert without it there is decoded whole.  The alert keys are not in KEYS, which only
# a single server allows: a cluster sends plain commands and reads the alerts after
# (`_alert_bodies`).
_FACTS = """
local function facts(keys, alert_head, alert_tail, resolved)
  local open = 0
  for _, id in ipairs(redis.call('SMEMBERS', keys[5])) do
    local key = alert_head .. id .. alert_tail
    local status = string.match(redis.call('GETRANGE', key, 0, 255), '"status":"(%w+)"')
    if not status then
      local body = redis.call('GET', key)
      status = body and cjson.decode(body)['status'] or resolved
    end
    if status ~= resolved then open = open + 1 end
  end
  return {redis.call('GET', keys[1]), redis.call('EXISTS', keys[2]),
          redis.call('GET', keys[3]), redis.call('GET', keys[4]), open,
          redis.call('HLEN', keys[6]), redis.call('HGETALL', keys[7])}
end
"""
# KEYS: the seven keys of `facts`.  ARGV: alert key head and tail, resolved status.
_CALLER = _FACTS + "return facts(KEYS, ARGV[1], ARGV[2], ARGV[3])"
# Resolving and reading in one call (a phone or e-mail lookup).  KEYS: an identifier's
# index key.  ARGV: the claimants' separator, the resolved status, alert key head and
# tail, then head and tail of each of the seven keys of `facts`.  Replies {claimants or
# false} when not exactly one customer claims the identifier, else {the customer, its
# facts...}.
_CALLER_BY_IDENTIFIER = _FACTS + """
local claimants = redis.call('GET', KEYS[1])
if not claimants or string.find(claimants, ARGV[1], 1, true) then return {claimants} end
local keys = {}
for n = 1, 7 do keys[n] = ARGV[3 + 2 * n] .. claimants .. ARGV[4 + 2 * n] end
local found = facts(keys, ARGV[3], ARGV[4], ARGV[2])
table.insert(found, 1, claimants)
return found
"""
# Outcomes are read for this month and the last; a year is kept for whoever reports them.
OUTCOMES_TTL_S = 400 * 86_400
# How long a parsed agent list is used before it is read again (in the background), and
# how old it may get while that read fails (Redis away) before callers wait for it.
AGENTS_MAX_AGE_S = 1.0
AGENTS_MAX_STALE_S = 10.0
NO_INTENT = "-"
# Intents whose outcomes the cache keeps at once; more (odd intents asked for) start it over.
MAX_INTENTS_KEPT = 1000


@dataclass(frozen=True, slots=True)
class CallerReads:
    """What Redis holds about one caller, as routing needs it."""

    customer_id: str
    merged_into: str | None  # the customer it is merged into (its data is there)
    known: bool  # a record or a timeline: someone we have heard of
    profile: dict | None
    preferences: dict | None
    open_alerts: int  # alerts not resolved
    negative: bool  # an open negative-interaction alert
    rated: dict[str, Outcome]  # agent_id -> this customer's surveys naming that agent


@dataclass(frozen=True, slots=True)
class RoutingReads:
    callers: list[CallerReads]  # in the order asked
    outcomes: dict[str, dict[str, Outcome]]  # intent -> agent_id -> this and last month's


class AgentStore:
    def __init__(self, redis: RedisClient, keys: Keys, *, rated_ttl_days: int = 400) -> None:
        self.redis = redis
        self.keys = keys
        self.rated_ttl_s = rated_ttl_days * 86_400
        self.one_slot = not isinstance(redis, RedisCluster)
        self._caller = redis.register_script(_CALLER)
        self._by_identifier = redis.register_script(_CALLER_BY_IDENTIFIER)
        self._alert_key = _around(keys.alert)
        self._fact_keys = [part for key_of in (
            keys.merged_into, keys.timeline, keys.profile, keys.preferences,
            keys.customer_alerts, keys.open_negative, keys.rated_agents)
            for part in _around(key_of)]

    # -- cx.agents.v1 --------------------------------------------------------------

    async def apply(self, changes: Sequence[tuple[str, dict | None]]) -> None:
        """Records (None: removed) in the order given, in one round trip."""
        if not changes:
            return
        pipe = self.redis.pipeline(transaction=False)
        for agent_id, record in changes:
            if record is None:
                pipe.hdel(self.keys.agents(), agent_id)
            else:
                pipe.hset(self.keys.agents(), agent_id, orjson.dumps(record))
        await pipe.execute()

    async def records(self) -> dict[str, dict]:
        """Every agent's record as received, by agent_id."""
        found = await self.redis.hgetall(self.keys.agents())
        return {text(k): orjson.loads(v) for k, v in found.items()}

    async def agents(self, known: dict[bytes | str, Agent] | None = None
                     ) -> dict[bytes | str, Agent]:
        """Every agent, parsed, by its stored record (JSON bytes), in agent_id order.
        Records found in `known` (an earlier answer) are not parsed again."""
        known = known or {}
        found = await self.redis.hgetall(self.keys.agents())
        agents: dict[bytes | str, Agent] = {}
        for agent_id, raw in sorted(found.items()):
            agent = known.get(raw)
            if agent is None:
                try:
                    agent = agent_from_record(orjson.loads(raw))
                except (KeyError, TypeError, ValueError) as exc:  # validated on the way in
                    log.warning("agent %s: stored record not usable (%s)", text(agent_id), exc)
                    continue
            agents[raw] = agent
        return agents

    # -- counting: a survey's outcome for the agent it names --------------------------

    def survey_tallies(self, customer_id: str | None, agent_id: str, intent: str | None,
                       month: str, *, top2: bool, bottom2: bool) -> tuple[Tally, ...]:
        """The increments one survey naming `agent_id` adds, for the survey counters'
        script to make once; `customer_id` None (a caller not known yet): only the
        agent's.  `month` is the survey's UTC month, "YYYYMM"."""
        # Once per survey on the worker's hot path: plain dicts, no loops.
        head = f"{agent_id}|{intent or NO_INTENT}|"
        agent = {head + "n": 1}
        if top2:
            agent[head + "t2"] = 1
        if bottom2:
            agent[head + "b2"] = 1
        outcomes = Tally(self.keys.agent_outcomes(month), agent, OUTCOMES_TTL_S)
        if customer_id is None:
            return (outcomes,)
        mine = {f"{agent_id}|{metric}": 1 for metric, counts in
                (("n", True), ("t2", top2), ("b2", bottom2)) if counts}
        return outcomes, Tally(self.keys.rated_agents(customer_id), mine, self.rated_ttl_s)

    # -- reads for routing -----------------------------------------------------------

    async def read(self, customer_ids: Sequence[str], agent_ids: Sequence[str],
                   intents: Sequence[str], months: Sequence[str]) -> RoutingReads:
        """The callers' facts and the agents' outcomes on each intent summed over
        `months`: one round trip (a second on a cluster for customers with alerts)."""
        k = self.keys

        def callers(pipe: RedisPipeline) -> None:
            for cid in customer_ids:
                keys = (k.merged_into(cid), k.timeline(cid), k.profile(cid), k.preferences(cid),
                        k.customer_alerts(cid), k.open_negative(cid), k.rated_agents(cid))
                if self.one_slot:
                    pipe.evalsha(self._caller.sha, len(keys), *keys, *self._alert_key, RESOLVED)
                else:
                    into, timeline, profile, prefs, alerts, negative, rated = keys
                    pipe.get(into)
                    pipe.exists(timeline)
                    pipe.get(profile)
                    pipe.get(prefs)
                    pipe.smembers(alerts)
                    pipe.hlen(negative)
                    pipe.hgetall(rated)

        per = 1 if self.one_slot else 7
        replies, outcomes = await self._execute(callers, len(customer_ids) * per, agent_ids,
                                                intents, months)
        facts = [replies[i] if self.one_slot else replies[i * per:(i + 1) * per]
                 for i in range(len(customer_ids))]
        if not self.one_slot:
            counts = [_open_count(bodies) for bodies in
                      await self._alert_bodies([found[4] for found in facts])]
            facts = [[*found[:4], count, *found[5:]] for found, count in zip(facts, counts,
                                                                            strict=True)]
        return RoutingReads([_caller_reads(cid, found) for cid, found in
                             zip(customer_ids, facts, strict=True)], outcomes)

    async def read_by_identifier(self, identity_key: str, agent_ids: Sequence[str],
                                 intents: Sequence[str], months: Sequence[str]
                                 ) -> tuple[tuple[str, ...], RoutingReads]:
        """The claimants of an identifier, and `read`'s answer for the customer when it is
        exactly one (else no callers): one round trip.  On a single server only (the
        script reads keys of the customer it finds: `one_slot`)."""
        def caller(pipe: RedisPipeline) -> None:
            pipe.evalsha(self._by_identifier.sha, 1, self.keys.identity(identity_key),
                         CLAIMANT_SEPARATOR, RESOLVED, *self._alert_key, *self._fact_keys)

        (reply,), outcomes = await self._execute(caller, 1, agent_ids, intents, months)
        if len(reply) == 1:
            return parse_claimants(None if reply[0] is None else text(reply[0])), \
                RoutingReads([], outcomes)
        cid = text(reply[0])
        return (cid,), RoutingReads([_caller_reads(cid, reply[1:])], outcomes)

    async def _execute(self, callers: Callable[[RedisPipeline], None], replies: int,
                       agent_ids: Sequence[str], intents: Sequence[str], months: Sequence[str]
                       ) -> tuple[list, dict[str, dict[str, Outcome]]]:
        """One pipeline: what `callers` adds (`replies` replies), then the agents' outcomes
        on each intent over `months`; those replies, and the outcomes summed."""
        if not agent_ids:
            intents = []  # nothing to read outcomes of (and HMGET needs a field)
        fields = {intent: [f"{a}|{intent}|{m}" for a in agent_ids for m in ("n", "t2", "b2")]
                  for intent in intents}
        for attempt in (1, 2):
            pipe = self.redis.pipeline(transaction=False)
            callers(pipe)
            for intent in intents:
                for month in months:
                    pipe.hmget(self.keys.agent_outcomes(month), fields[intent])
            try:
                found = await pipe.execute()
                break
            except NoScriptError:  # Redis restarted or was flushed: load them, send again
                if attempt == 2:
                    raise
                for script in (_CALLER, _CALLER_BY_IDENTIFIER):
                    await self.redis.script_load(script)
        outcomes: dict[str, dict[str, Outcome]] = {}
        at = replies
        for intent in intents:
            counts = [0] * len(fields[intent])
            for _ in months:
                for index, value in enumerate(found[at]):
                    if value is not None:
                        counts[index] += int(value)
                at += 1
            outcomes[intent] = {
                agent: Outcome(counts[3 * n], counts[3 * n + 1], counts[3 * n + 2])
                for n, agent in enumerate(agent_ids) if counts[3 * n]}
        return found[:replies], outcomes

    async def _alert_bodies(self, members: list[set]) -> list[list]:
        """The alerts of each customer's set (on a cluster, where a script may not read
        them, `_OPEN_ALERTS`): one more round trip, when any customer has alerts."""
        ids = [sorted(text(m) for m in found) for found in members]
        wanted = [i for found in ids for i in found]
        if not wanted:
            return [[] for _ in ids]
        pipe = self.redis.pipeline(transaction=False)
        for alert_id in wanted:
            pipe.get(self.keys.alert(alert_id))
        bodies = iter(await pipe.execute())
        return [[next(bodies) for _ in found] for found in ids]


class AgentCache:
    """What every hint shares: the parsed agents, and their outcomes per intent (both
    change when a supervisor edits a record or a survey arrives, not per call).

    Both are read again once `max_age_s` old, in the background: callers get what is in
    hand meanwhile (up to `max_stale_s` old, should Redis be away), so no hint waits
    for those reads; only agent records that changed are parsed again.  The outcomes of
    an intent nobody asked about lately are read in the pipeline of the hint that asks
    (`outcomes` says None, the caller reads them and `keep`s them)."""

    def __init__(self, store: AgentStore, max_age_s: float = AGENTS_MAX_AGE_S,
                 clock: Callable[[], float] = time.monotonic,
                 max_stale_s: float = AGENTS_MAX_STALE_S) -> None:
        self.store = store
        self.max_age_s = max_age_s
        self.max_stale_s = max_stale_s
        self.clock = clock
        self._parsed: dict[bytes | str, Agent] = {}
        self._agents: list[Agent] | None = None
        self._read_at = 0.0
        self._reading: asyncio.Task[list[Agent]] | None = None
        self._outcomes: dict[str, tuple[float, dict[str, Outcome]]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def agents(self) -> list[Agent]:
        age = self.clock() - self._read_at
        if self._agents is not None and age < self.max_age_s:
            return self._agents
        # A finished read is stale by now, or failed: either way, read again.
        if self._reading is None or self._reading.done():
            self._reading = asyncio.ensure_future(self._read())
            self._reading.add_done_callback(_log_failure)
        if self._agents is not None and age < self.max_stale_s:
            return self._agents
        # Shielded: one caller giving up (a client gone) does not cancel the others' read.
        return await asyncio.shield(self._reading)

    def outcomes(self, intent: str, months: Sequence[str]) -> dict[str, Outcome] | None:
        """The agents' outcomes on `intent` over `months` as last read; None when never
        read (or `max_stale_s` ago), for the caller to read them with its own.  Once
        `max_age_s` old they are read again in the background."""
        kept = self._outcomes.get(intent)
        age = self.max_stale_s if kept is None else self.clock() - kept[0]
        if age >= self.max_stale_s:
            return None
        if age >= self.max_age_s and intent not in self._refreshing:
            task = asyncio.ensure_future(self._refresh(intent, tuple(months)))
            self._refreshing[intent] = task
            task.add_done_callback(lambda done: self._refreshed(intent, done))
        return kept[1] if kept is not None else None

    def keep(self, intent: str, outcomes: dict[str, Outcome]) -> None:
        if len(self._outcomes) > MAX_INTENTS_KEPT:  # intents are free text in a request
            self._outcomes.clear()
        self._outcomes[intent] = (self.clock(), outcomes)

    async def _refresh(self, intent: str, months: tuple[str, ...]) -> None:
        ids = [agent.agent_id for agent in self._agents or () if agent.available]
        reads = await self.store.read([], ids, [intent], months)
        self.keep(intent, reads.outcomes.get(intent, {}))

    def _refreshed(self, intent: str, task: asyncio.Task) -> None:
        self._refreshing.pop(intent, None)
        _log_failure(task)

    async def _read(self) -> list[Agent]:
        parsed = await self.store.agents(self._parsed)
        if parsed.keys() != self._parsed.keys():
            self._outcomes.clear()  # read for the agents before: a new one would be missing
        self._parsed = parsed
        self._agents, self._read_at = list(parsed.values()), self.clock()
        return self._agents


def _log_failure(task: asyncio.Task) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("could not read the agents or their outcomes: %s", task.exception())


def _around(key_of: Callable[[str], str]) -> tuple[str, str]:
    """A key's text before and after the id it is built from, for a script that finds
    the id itself (keys.py still spells every key)."""
    before, _, after = key_of("\n").partition("\n")
    return before, after


def _caller_reads(cid: str, found: Sequence) -> CallerReads:
    into, timeline, profile, prefs, open_alerts, negative, rated = found
    record = _json_or_none(profile)
    return CallerReads(cid, _text_or_none(into), bool(timeline) or record is not None, record,
                       _json_or_none(prefs), int(open_alerts), int(negative) > 0, _rated(rated))


def _text_or_none(reply: bytes | str | None) -> str | None:
    return None if reply is None else text(reply)


def _json_or_none(reply: bytes | str | None) -> dict | None:
    return None if reply is None else orjson.loads(reply)


def _open_count(bodies: Sequence[bytes | str | None]) -> int:
    """How many of these alerts (JSON; None: gone since) are not resolved."""
    return sum(1 for body in bodies
               if body is not None and orjson.loads(body).get("status") != RESOLVED)


def _rated(found: dict | list) -> dict[str, Outcome]:
    """The ratings hash, as HGETALL answers a command (a dict) or a script (a flat list)."""
    pairs = found.items() if isinstance(found, dict) else zip(found[::2], found[1::2],
                                                              strict=True)
    counts: dict[str, dict[str, int]] = {}
    for field, value in pairs:
        agent, _, metric = text(field).rpartition("|")
        if agent and metric in ("n", "t2", "b2"):
            counts.setdefault(agent, {})[metric] = int(value)
    return {agent: Outcome(c.get("n", 0), c.get("t2", 0), c.get("b2", 0))
            for agent, c in counts.items()}
