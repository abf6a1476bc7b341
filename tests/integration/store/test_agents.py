"""Agents and routing's memory of surveys on a real Redis: records in and out, outcomes
counted once with their survey (redeliveries too), and the one-pipeline read a hint uses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from redis.asyncio import Redis

from cxt.localstack import LocalStack
from domain.routing import Outcome
from store.agents import AgentStore
from store.alerts import AlertStore, SurveyCount
from store.keys import Keys

T = TypeVar("T")


def _agent(agent_id: str, **changes: object) -> dict:
    return {"agent_id": agent_id, "name": f"Agent {agent_id}", "skills": {"billing": 3},
            "languages": ["en"], "tier": "standard", "queues": ["billing"],
            "available": True, **changes}


def _run(stack: LocalStack,
         scenario: Callable[[Redis, Keys, AgentStore, AlertStore], Awaitable[T]]) -> T:
    async def main() -> T:
        redis = Redis.from_url(stack.settings.redis_url)
        keys = Keys(f"a{uuid.uuid4().hex[:6]}")
        try:
            return await scenario(redis, keys, AgentStore(redis, keys),
                                  AlertStore(redis, keys, counters_ttl_days=90))
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_records_are_put_and_removed_in_order(stack: LocalStack) -> None:
    async def scenario(redis: Redis, keys: Keys, agents: AgentStore, _: AlertStore) -> tuple:
        await agents.apply([("A-2", _agent("A-2")), ("A-1", _agent("A-1", tier="senior")),
                            ("A-3", _agent("A-3"))])
        # A newer record replaces the older whole; a tombstone after a record removes it.
        await agents.apply([("A-1", _agent("A-1", skills={"technical": 5})),
                            ("A-3", _agent("A-3")), ("A-3", None)])
        return await agents.records(), list((await agents.agents()).values())

    records, parsed = _run(stack, scenario)
    assert sorted(records) == ["A-1", "A-2"]
    assert records["A-1"]["skills"] == {"technical": 5}
    assert [a.agent_id for a in parsed] == ["A-1", "A-2"]
    assert parsed[0].skills == {"technical": 5} and parsed[0].tier == "standard"


def test_a_surveys_outcome_is_counted_once_through_redeliveries(stack: LocalStack) -> None:
    async def scenario(redis: Redis, keys: Keys, agents: AgentStore,
                       alerts: AlertStore) -> tuple:
        def survey(event_id: str, agent: str, *, month: str, top2: bool,
                   bottom2: bool) -> SurveyCount:
            hour = f"{month}0110"
            return SurveyCount(event_id, hour, {"x\x1f-\x1f-\x1fn": 1}, agents.survey_tallies(
                "C-1", agent, "billing", month, top2=top2, bottom2=bottom2))

        batch = [survey("s1", "A-1", month="202611", top2=False, bottom2=True),
                 survey("s2", "A-1", month="202612", top2=True, bottom2=False),
                 survey("s3", "A-2", month="202612", top2=True, bottom2=False)]
        await alerts.count_surveys(batch)
        await alerts.count_surveys(batch)  # the batch again, as after a crash
        await alerts.count_surveys([SurveyCount("s4", "2026120210", {}, agents.survey_tallies(
            None, "A-2", None, "202612", top2=False, bottom2=True))])  # caller unknown, no intent
        reads = await agents.read(["C-1"], ["A-1", "A-2", "A-9"], ["billing", "-"],
                                  ["202612", "202611"])
        hour = await redis.hgetall(keys.survey_counters("2026120110"))
        return reads, hour

    reads, hour = _run(stack, scenario)
    assert hour == {b"x\x1f-\x1f-\x1fn": b"2"}  # the hour's own counters: once each too
    assert reads.outcomes["billing"] == {"A-1": Outcome(2, 1, 1), "A-2": Outcome(1, 1, 0)}
    assert reads.outcomes["-"] == {"A-2": Outcome(1, 0, 1)}
    [caller] = reads.callers
    assert caller.rated == {"A-1": Outcome(2, 1, 1), "A-2": Outcome(1, 1, 0)}


def test_the_read_gives_each_callers_facts(stack: LocalStack) -> None:
    async def scenario(redis: Redis, keys: Keys, agents: AgentStore, _: AlertStore) -> list:
        await redis.set(keys.profile("C-1"), orjson.dumps({"customer_id": "C-1",
                                                           "segment": "vip"}))
        await redis.set(keys.preferences("C-1"), orjson.dumps({"language": "pl"}))
        for alert_id, status in (("AL-1", "open"), ("AL-2", "resolved"),
                                 ("AL-3", "acknowledged")):
            await redis.set(keys.alert(alert_id), orjson.dumps({"alert_id": alert_id,
                                                                "status": status}))
        # Stored with its status after a long field: found all the same.
        await redis.set(keys.alert("AL-5"), orjson.dumps({"alert_id": "AL-5", "note": "x" * 300,
                                                          "status": "escalated"}))
        # AL-4 is listed but gone (erased): not counted.
        await redis.sadd(keys.customer_alerts("C-1"), "AL-1", "AL-2", "AL-3", "AL-4", "AL-5")
        await redis.hset(keys.open_negative("C-1"), "billing", "AL-3")
        await redis.set(keys.merged_into("C-2"), "C-1")
        await redis.zadd(keys.timeline("C-3"), {"e1": 1})
        await redis.script_flush()  # as after a restart: the script is loaded again
        return (await agents.read(["C-1", "C-2", "C-3", "C-4"], [], ["billing"],
                                  ["202612"])).callers

    one, two, three, four = _run(stack, scenario)
    assert (one.known, one.profile, one.preferences) == (
        True, {"customer_id": "C-1", "segment": "vip"}, {"language": "pl"})
    assert (one.open_alerts, one.negative, one.merged_into) == (3, True, None)
    assert (two.merged_into, two.known, two.open_alerts) == ("C-1", False, 0)
    assert three.known and three.profile is None  # a timeline and no record yet
    assert not four.known and four.rated == {} and not four.negative


def test_an_identifier_is_resolved_and_its_customer_read_in_one_call(stack: LocalStack) -> None:
    async def scenario(redis: Redis, keys: Keys, agents: AgentStore, _: AlertStore) -> list:
        await redis.set(keys.identity("phone:+441"), "C-1")
        await redis.set(keys.identity("phone:+442"), "C-2\nC-3")  # shared
        await redis.set(keys.profile("C-1"), orjson.dumps({"customer_id": "C-1"}))
        await redis.hset(keys.rated_agents("C-1"), mapping={"A-1|n": 1, "A-1|b2": 1})
        await redis.hset(keys.agent_outcomes("202612"), mapping={"A-1|billing|n": 4,
                                                                 "A-1|billing|t2": 3})
        await redis.script_flush()
        return [await agents.read_by_identifier(key, ["A-1"], ["billing"], ["202612"])
                for key in ("phone:+441", "phone:+442", "phone:+443")]

    (one, one_reads), (shared, shared_reads), (nobody, nobody_reads) = _run(stack, scenario)
    assert one == ("C-1",)
    [caller] = one_reads.callers
    assert (caller.customer_id, caller.known, caller.rated) == ("C-1", True,
                                                                {"A-1": Outcome(1, 0, 1)})
    assert one_reads.outcomes == {"billing": {"A-1": Outcome(4, 3, 0)}}
    assert shared == ("C-2", "C-3") and shared_reads.callers == []
    assert nobody == () and nobody_reads.callers == []
    assert nobody_reads.outcomes == {"billing": {"A-1": Outcome(4, 3, 0)}}
