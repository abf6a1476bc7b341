"""store.agents without Redis: the increments a survey adds, and the agents cache."""

from __future__ import annotations

import asyncio

import pytest
from redis.asyncio import Redis

from domain.routing import Agent, Outcome
from store.agents import OUTCOMES_TTL_S, AgentCache, AgentStore, RoutingReads
from store.alerts import Tally
from store.keys import Keys

KEYS = Keys("cxt")


def _store() -> AgentStore:
    # Never connects: building a client opens nothing.
    return AgentStore(Redis(), KEYS, rated_ttl_days=90)


def test_a_survey_adds_to_the_agents_outcomes_and_the_customers_ratings() -> None:
    tallies = _store().survey_tallies("C-1", "A-7", "billing", "202612", top2=False,
                                      bottom2=True)
    assert tallies == (
        Tally("cxt:{ro:202612}:n", {"A-7|billing|n": 1, "A-7|billing|b2": 1}, OUTCOMES_TTL_S),
        Tally("cxt:{C-1}:ragents", {"A-7|n": 1, "A-7|b2": 1}, 90 * 86_400))


def test_an_unknown_caller_and_a_survey_without_intent_add_only_the_agents() -> None:
    tallies = _store().survey_tallies(None, "A-7", None, "202612", top2=True, bottom2=False)
    assert tallies == (Tally("cxt:{ro:202612}:n", {"A-7|-|n": 1, "A-7|-|t2": 1},
                             OUTCOMES_TTL_S),)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _Agents:
    """Stands in for AgentStore.agents: counts reads, can fail once, can be slow."""

    def __init__(self) -> None:
        self.reads = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def agents(self, known: dict | None = None) -> dict[bytes, Agent]:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail = False
            raise ConnectionError("redis away")
        agent_id = f"A-{self.reads}"
        return {agent_id.encode(): Agent(agent_id, None, {}, (), "standard", (), True)}


def _cache(source: _Agents, clock: _Clock) -> AgentCache:
    return AgentCache(source, max_age_s=1.0, clock=clock, max_stale_s=10.0)  # type: ignore[arg-type]


async def _first_id(cache: AgentCache) -> str:
    return (await cache.agents())[0].agent_id


def test_a_second_old_list_is_served_while_it_is_read_again_in_the_background() -> None:
    source, clock = _Agents(), _Clock()
    cache = _cache(source, clock)

    async def scenario() -> list[str]:
        seen = [await _first_id(cache)]
        clock.now += 0.9
        seen.append(await _first_id(cache))
        clock.now += 0.2  # a second old: answered at once, read again meanwhile
        seen.append(await _first_id(cache))
        await asyncio.sleep(0)
        seen.append(await _first_id(cache))
        return seen

    assert asyncio.run(scenario()) == ["A-1", "A-1", "A-1", "A-2"]
    assert source.reads == 2


def test_callers_without_a_list_share_one_read_and_a_failed_read_is_retried() -> None:
    source, clock = _Agents(), _Clock()
    cache = _cache(source, clock)

    async def first() -> list[list[Agent]]:
        source.gate = asyncio.Event()
        waiting = [asyncio.ensure_future(cache.agents()) for _ in range(5)]
        await asyncio.sleep(0)
        source.gate.set()
        return await asyncio.gather(*waiting)

    results = asyncio.run(first())
    assert source.reads == 1 and all(r == results[0] for r in results)

    async def redis_away() -> list[str]:
        source.gate = None
        clock.now += 5  # stale: still served while the read fails in the background
        source.fail = True
        seen = [await _first_id(cache)]
        await asyncio.sleep(0)
        clock.now += 10  # too stale to serve: callers wait for the read
        seen.append(await _first_id(cache))
        return seen

    assert asyncio.run(redis_away()) == ["A-1", "A-3"]

    async def away_too_long() -> None:
        clock.now += 20
        source.fail = True
        with pytest.raises(ConnectionError):
            await cache.agents()

    asyncio.run(away_too_long())


class _Outcomes(_Agents):
    """Also stands in for AgentStore.read, for the outcomes' background refresh."""

    def __init__(self) -> None:
        super().__init__()
        self.outcome_reads: list[tuple] = []

    async def read(self, customers: list, agent_ids: list, intents: list,
                   months: tuple) -> RoutingReads:
        self.outcome_reads.append((agent_ids, intents, months))
        return RoutingReads([], {i: {"A-1": Outcome(9, 9, 0)} for i in intents})


def test_outcomes_are_served_as_kept_and_read_again_in_the_background() -> None:
    source, clock = _Outcomes(), _Clock()
    cache = _cache(source, clock)
    months = ("202612", "202611")

    async def scenario() -> list[object]:
        await cache.agents()
        seen: list[object] = [cache.outcomes("billing", months)]  # never read: the caller's
        cache.keep("billing", {"A-1": Outcome(3, 2, 0)})
        clock.now += 0.5
        seen.append(cache.outcomes("billing", months))
        clock.now += 0.6  # a second old: served as kept, read again meanwhile
        seen.append(cache.outcomes("billing", months))
        seen.append(cache.outcomes("billing", months))  # one read at a time
        await asyncio.sleep(0)
        seen.append(cache.outcomes("billing", months))
        clock.now += 20  # too old to serve
        seen.append(cache.outcomes("billing", months))
        return seen

    assert asyncio.run(scenario()) == [None, {"A-1": Outcome(3, 2, 0)},
                                       {"A-1": Outcome(3, 2, 0)}, {"A-1": Outcome(3, 2, 0)},
                                       {"A-1": Outcome(9, 9, 0)}, None]
    assert source.outcome_reads == [(["A-1"], ["billing"], months)]


def test_outcomes_kept_for_other_agents_are_dropped_with_a_new_agent_list() -> None:
    source, clock = _Agents(), _Clock()
    cache = _cache(source, clock)

    async def scenario() -> object:
        await cache.agents()
        cache.keep("billing", {"A-1": Outcome(3, 2, 0)})
        clock.now += 1.1
        await cache.agents()  # served stale; read again in the background ...
        await asyncio.sleep(0)  # ... with another agent: outcomes kept before are gone
        return cache.outcomes("billing", ("202612",))

    assert asyncio.run(scenario()) is None
