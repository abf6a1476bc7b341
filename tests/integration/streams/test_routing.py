"""Routing in a live worker on real Kafka and Redis: agent records in from cx.agents.v1
(removed by tombstone, bad ones dead-lettered), and a hint on cx.routing.v1 for every
call.offered / chat.offered, ranked with the customer's own survey history."""

from __future__ import annotations

import asyncio
import base64
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from kernel.settings import Settings
from schemas import validator
from store.keys import Keys
from streams.routing import hint_id_for
from tests.support.helpers import (
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import WorkerProcess

CHECK_HINT = validator("routing-hint.v1")


def _agent(agent_id: str, level: int, tier: str, *, available: bool = True) -> dict:
    return {"agent_id": agent_id, "name": f"Agent {agent_id}", "skills": {"billing": level,
                                                                          "technical": 2},
            "languages": ["en"], "tier": tier, "queues": ["billing", "general"],
            "available": available, "updated_at": "2026-12-01T09:00:00Z"}


# Two expert twins (the tie goes to the lower id), a junior learner, an expert who is out.
AGENTS = [_agent("A-100", 5, "senior"), _agent("A-101", 5, "senior"),
          _agent("A-102", 1, "junior"), _agent("A-103", 5, "senior", available=False)]


@pytest.fixture(scope="module")
def worker(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Settings, WorkerProcess]]:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    asyncio.run(produce(settings, settings.topics.agents,
                        [(a["agent_id"].encode(), orjson.dumps(a)) for a in AGENTS]))
    process = WorkerProcess(settings, tmp_path_factory.mktemp("routing")).start()
    client = redis.Redis.from_url(settings.redis_url)
    try:
        stored = asyncio.run(eventually(
            lambda: client.hlen(Keys(settings.redis_prefix).agents()) == len(AGENTS),
            timeout=90))
        assert stored, process.log()
        yield settings, process
    finally:
        client.close()
        process.stop()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def _offered(cid: str | None, **identity: str) -> dict:
    return envelope("call", cid, event_type="call.offered", occurred_at=_now(),
                    identity=identity or None, call_id=f"CALL-{uuid.uuid4().hex[:8]}",
                    intent="billing", ivr_path=["billing"], queue="billing")


def _hint(settings: Settings, offered: dict, timeout: float = 60) -> tuple[bytes, dict]:
    def mine(records: list) -> list:
        return [r for r in records if r.value is not None
                and orjson.loads(r.value)["event_id"] == offered["event_id"]]

    found = mine(asyncio.run(read_topic(settings, settings.topics.routing, timeout=timeout,
                                        until=lambda ms: bool(mine(ms)))))
    assert found, f"no hint for {offered['event_id']}"
    hint = orjson.loads(found[0].value)
    CHECK_HINT(hint)
    return found[0].key, hint


def _customer(settings: Settings, cid: str, **fields: object) -> None:
    record = {"customer_id": cid, "name": f"Customer {cid}", **fields}
    asyncio.run(produce(settings, settings.topics.customers,
                        [(cid.encode(), orjson.dumps(record))]))


def test_an_offered_call_gets_a_hint_ranking_the_skilled_agents_first(
        worker: tuple[Settings, WorkerProcess]) -> None:
    settings, process = worker
    cid = f"C-{uuid.uuid4().hex[:10]}"
    _customer(settings, cid, segment="retail")
    offered = _offered(cid)
    asyncio.run(produce_events(settings, [offered]))
    key, hint = _hint(settings, offered)
    assert key == cid.encode()
    assert hint["hint_id"] == hint_id_for(offered["event_id"])
    assert (hint["type"], hint["customer_id"], hint["known"]) == ("call.offered", cid, True)
    assert (hint["queue"], hint["skill"], hint["channel"]) == ("billing", "billing", "call")
    assert [a["agent_id"] for a in hint["agents"]] == ["A-100", "A-101", "A-102"]
    best = hint["agents"][0]
    skill = next(r for r in best["reasons"] if r["factor"] == "skill")
    assert skill == {"factor": "skill", "weight": 10.0, "points": 50.0,
                     "detail": "billing level 5 of 5"}
    assert best["score"] == pytest.approx(sum(r["points"] for r in best["reasons"]), abs=0.01)
    assert hint["agents"][0]["score"] > hint["agents"][2]["score"]
    # The offered event is an interaction like any other: it is in the timeline.
    timeline = asyncio.run(read_topic(
        settings, settings.topics.timeline, timeout=10,
        until=lambda ms: any(orjson.loads(m.value)["event_id"] == offered["event_id"]
                             for m in ms if m.value)))
    assert any(orjson.loads(m.value)["type"] == "call.offered" for m in timeline if m.value)
    process.assert_alive()


def test_a_bottom_2_box_survey_of_an_agent_ranks_them_down_in_the_next_hint(
        worker: tuple[Settings, WorkerProcess]) -> None:
    settings, _ = worker
    cid = f"C-{uuid.uuid4().hex[:10]}"
    _customer(settings, cid)
    before = _offered(cid)
    asyncio.run(produce_events(settings, [before]))
    _, first = _hint(settings, before)
    assert [a["agent_id"] for a in first["agents"][:2]] == ["A-100", "A-101"]

    survey = envelope("survey", cid, occurred_at=_now(), score=1, agent_id="A-100",
                      intent="billing", contact_channel="call", comment="no help at all")
    after = _offered(cid)
    # Same customer, same partition: the survey is counted before the next offer is ranked.
    asyncio.run(produce_events(settings, [survey, after]))
    _, second = _hint(settings, after)
    assert [a["agent_id"] for a in second["agents"][:2]] == ["A-101", "A-100"]
    rated = next(r for r in second["agents"][1]["reasons"] if r["factor"] == "customer_rated")
    assert rated["points"] < 0 and "bottom-2-box once" in rated["detail"]
    # The survey's alert is open now: the hint asks for a senior agent and says why.
    assert second["tier"] == "senior"
    assert any(r["factor"] == "open_alerts" for r in second["reasons"])


def test_an_unknown_caller_gets_the_default_answer(
        worker: tuple[Settings, WorkerProcess]) -> None:
    settings, _ = worker
    phone = f"+4479{uuid.uuid4().int % 10**8:08d}"
    offered = _offered(None, phone=phone)
    offered["type"] = "chat.offered"
    offered["payload"] = {"chat_id": "CH-1", "intent": "billing", "queue": "billing"}
    asyncio.run(produce(settings, settings.topics.chat, [(None, orjson.dumps(offered))]))
    key, hint = _hint(settings, offered)
    assert key is None  # no customer to key it by
    assert (hint["customer_id"], hint["known"], hint["default"]) == (None, False, True)
    assert hint["channel"] == "chat" and hint["tier"] is None
    assert hint["reasons"][0]["factor"] == "not_found"
    # Ranked by skill alone.
    assert [a["agent_id"] for a in hint["agents"]] == ["A-100", "A-101", "A-102"]
    assert all([r["factor"] for r in a["reasons"]] == ["skill"] for a in hint["agents"])


def test_agents_are_removed_by_tombstone_and_bad_records_dead_lettered(
        worker: tuple[Settings, WorkerProcess]) -> None:
    settings, process = worker
    agents_key = Keys(settings.redis_prefix).agents()
    client = redis.Redis.from_url(settings.redis_url)

    def stored() -> list[str]:
        return sorted(k.decode() for k in client.hkeys(agents_key))

    try:
        asyncio.run(produce(settings, settings.topics.agents,
                            [(b"A-150", orjson.dumps(_agent("A-150", 3, "standard")))]))
        assert asyncio.run(eventually(lambda: "A-150" in stored(), timeout=30)), process.log()
        bad = _agent("A-151", 9, "standard")  # level 9: off the 1..5 scale
        wrong_key = _agent("A-152", 3, "standard")
        asyncio.run(produce(settings, settings.topics.agents, [
            (b"A-151", orjson.dumps(bad)), (b"A-999", orjson.dumps(wrong_key)),
            (b"A-150", None)]))
        assert asyncio.run(eventually(lambda: "A-150" not in stored(), timeout=30))
        assert stored() == [a["agent_id"] for a in AGENTS]
    finally:
        client.close()

    def dead(records: list) -> list[dict]:
        values = [orjson.loads(r.value) for r in records if r.value is not None]
        return sorted((d for d in values if d["topic"] == settings.topics.agents),
                      key=lambda d: d["message"])

    letters = dead(asyncio.run(read_topic(settings, settings.topics.deadletter, timeout=60,
                                          until=lambda ms: len(dead(ms)) >= 2)))
    assert [(d["reason"], d["message"]) for d in letters] == [
        ("schema_violation", "agent_id: 'A-152' differs from the record's key 'A-999' (the "
                             "topic is compacted by agent_id)"),
        ("schema_violation", "skills.billing: must be smaller than or equal to 5 (got 9)")]
    assert base64.b64decode(letters[1]["key"]) == b"A-151"
    process.assert_alive()

