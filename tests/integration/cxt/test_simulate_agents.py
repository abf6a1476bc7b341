"""`cxt simulate` publishes the agent records on cx.agents.v1 before the traffic, and its
traffic offers calls and chats (call.offered / chat.offered) for the routing hint; on the
session's real Kafka (no worker needed)."""

from __future__ import annotations

import asyncio

import orjson

from cxt.localstack import LocalStack
from cxt.simulate import simulate
from cxt.tokens import DEV_AGENTS
from cxt.traffic import make_agents
from schemas.registry import validator
from tests.support.helpers import create_topics, isolated, read_topic


def test_simulate_publishes_the_agents_first_and_offers_contacts(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    report = asyncio.run(simulate(settings, rate=400, duration=2, customers=50, seed=3,
                                  status_every=0))
    assert (report.customers_published, report.agents_published) == (50, len(DEV_AGENTS))
    assert report.failed == 0
    records = asyncio.run(read_topic(settings, settings.topics.agents,
                                     until=lambda seen: len(seen) >= len(DEV_AGENTS)))
    values = [orjson.loads(r.value) for r in records]
    assert all(r.key for r in records)  # keyed by agent_id, so compaction keeps the latest
    assert [r.key.decode() for r in records] == [v["agent_id"] for v in values]
    assert {v["agent_id"] for v in values} == set(DEV_AGENTS)
    expected = {a["agent_id"]: a for a in make_agents(3)}
    check = validator("agent.v1")
    for value in values:
        check(value)
        assert {k: v for k, v in value.items() if k != "updated_at"} == \
            expected[value["agent_id"]]
        assert value["updated_at"].endswith("Z")
    calls = asyncio.run(read_topic(settings, settings.topics.call,
                                   until=lambda seen: False, timeout=3))
    offered = [orjson.loads(r.value) for r in calls
               if orjson.loads(r.value)["type"] == "call.offered"]
    assert offered and all("agent_id" not in o["payload"] and o["payload"]["intent"]
                           for o in offered)
