"""Bottom-2-box alerts end to end on the real broker and Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from cxt.localstack import LocalStack
from domain.alerts import alert_id_for
from kernel.settings import Settings
from schemas import validator
from tests.support.helpers import (
    alerts_through_a_marker,
    create_topics,
    envelope,
    eventually,
    produce,
    produce_events,
    read_topic,
)
from tests.support.helpers import isolated as isolated_settings
from tests.support.processes import WorkerProcess, run_cxt
from usecases.report import survey_rows

ACK_TIMEOUT_S = 4


@pytest.fixture(scope="module")
def pipeline(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[tuple[Settings, WorkerProcess]]:
    settings = isolated_settings(stack.settings, alert_ack_timeout_s=ACK_TIMEOUT_S,
                                 escalation_check_s=1)
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("alerts")).start()
    try:
        probe = envelope("call", f"warmup-{uuid.uuid4().hex[:6]}")
        asyncio.run(produce_events(settings, [probe]))
        assert asyncio.run(_alert_events(settings, None, until_any=False, probe=probe)), \
            worker.log()
        yield settings, worker
    finally:
        worker.stop()


async def _alert_events(settings: Settings, survey_event_id: str | None, *, count: int = 1,
                        event: str | None = None, until_any: bool = True,
                        probe: dict | None = None, timeout: float = 30) -> list[dict]:
    if probe is not None:  # wait for the worker: the probe reaches the timeline topic
        records = await read_topic(
            settings, settings.topics.timeline, timeout=90,
            until=lambda ms: any(orjson.loads(m.value)["event_id"] == probe["event_id"]
                                 for m in ms))
        return [orjson.loads(m.value) for m in records]

    def mine(ms: list) -> list[dict]:
        found = [orjson.loads(m.value) for m in ms]
        return [a for a in found if a["survey_event_id"] == survey_event_id
                and (event is None or a["event"] == event)]

    records = await read_topic(settings, settings.topics.alerts, timeout=timeout,
                               until=lambda ms: len(mine(ms)) >= count)
    return mine(records)


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def test_bottom_2_box_survey_raises_one_alert_with_context_and_category(pipeline) -> None:
    settings, _ = pipeline
    cid = _customer()
    call = envelope("call", cid, occurred_at="2026-11-22T09:00:00Z", intent="billing",
                    queue="billing-uk", agent_id="A-7", transfers=3, outcome="unresolved")
    chat = envelope("chat", cid, occurred_at="2026-11-22T09:30:00Z")
    survey = envelope("survey", cid, occurred_at="2026-11-22T10:00:00Z", score=1,
                      contact_id=call["event_id"], contact_channel="call", agent_id="A-7",
                      queue="billing-uk", comment="The agent was rude and I had to repeat myself",
                      reason_codes=["agent_attitude"])
    asyncio.run(produce_events(settings, [call, chat]))
    asyncio.run(eventually(lambda: run_cxt(settings, "timeline", cid, "--json").stdout.count(
        '"event_id"') >= 2, timeout=20))
    asyncio.run(produce_events(settings, [survey, survey]))  # a source duplicate too

    raised = asyncio.run(_alert_events(settings, survey["event_id"], event="raised"))
    assert len(raised) == 1
    alert = raised[0]
    assert alert["alert_id"] == alert_id_for(survey["event_id"])
    for field in ("alert_id", "event", "status", "kind", "customer_id", "survey_event_id",
                  "score", "scale_min", "scale_max", "category", "agent_id", "queue",
                  "contact_id", "comment", "survey_occurred_at", "raised_at", "latency_ms",
                  "context"):
        assert field in alert, field
    assert (alert["status"], alert["kind"], alert["customer_id"]) == ("open", "bottom_2_box", cid)
    assert (alert["score"], alert["scale_min"], alert["scale_max"]) == (1, 1, 5)
    assert alert["category"] == "skill"
    assert 0 <= alert["latency_ms"] < 10_000
    assert [e["event_id"] for e in alert["context"]] == [
        survey["event_id"], chat["event_id"], call["event_id"]]
    assert [e.get("rated", False) for e in alert["context"]] == [False, False, True]
    assert alert["rated_contact"]["payload"]["transfers"] == 3

    # The stored alert is the same one, and a second copy never appears.
    shown = orjson.loads(run_cxt(settings, "alerts", "show", alert["alert_id"], "--json").stdout)
    assert shown["survey_event_id"] == survey["event_id"]
    again = [a for a in asyncio.run(alerts_through_a_marker(settings, cid))
             if a["survey_event_id"] == survey["event_id"] and a["event"] == "raised"]
    assert len(again) == 1


@pytest.mark.parametrize(("scale", "score", "alert"), [
    ((1, 5), 2, True), ((1, 5), 3, False), ((0, 10), 1, True), ((0, 10), 2, False),
    ((3, 7), 4, True), ((3, 7), 5, False),
])
def test_the_rule_at_the_edges_of_several_scales(pipeline, scale, score, alert) -> None:
    settings, _ = pipeline
    cid = _customer()
    survey = envelope("survey", cid, score=score, scale_min=scale[0], scale_max=scale[1])
    asyncio.run(produce_events(settings, [survey]))
    found = [a for a in asyncio.run(alerts_through_a_marker(settings, cid))
             if a["survey_event_id"] == survey["event_id"] and a["event"] == "raised"]
    assert len(found) == (1 if alert else 0)


def test_lifecycle_ack_callback_resolve_and_escalation(pipeline) -> None:
    settings, _ = pipeline
    cid = _customer()
    survey = envelope("survey", cid, score=1, comment="price went up again",
                      reason_codes=["price"])
    asyncio.run(produce_events(settings, [survey]))
    alert = asyncio.run(_alert_events(settings, survey["event_id"], event="raised"))[0]
    assert alert["category"] == "business_operations"

    # Nobody acknowledges within the timeout: escalated, once.
    escalated = asyncio.run(_alert_events(settings, survey["event_id"], event="escalated",
                                          timeout=ACK_TIMEOUT_S + 20))
    assert len(escalated) == 1 and escalated[0]["status"] == "escalated"

    too_early = run_cxt(settings, "alerts", "resolve", alert["alert_id"], "--actor", "adv-ana")
    assert too_early.returncode == 1 and "acknowledged first" in too_early.stderr
    stranger = run_cxt(settings, "alerts", "ack", alert["alert_id"], "--actor", "mallory")
    assert stranger.returncode == 1 and "mallory" in stranger.stderr

    steps = [("ack", "--note", "on it"),
             ("callback", "--outcome", "reached", "--note", "apologised, refunded"),
             ("resolve", "--category", "business_operations", "--note", "price rise explained")]
    for step in steps:
        result = run_cxt(settings, "alerts", step[0], alert["alert_id"], "--actor", "adv-ana",
                      *step[1:], "--json")
        assert result.returncode == 0, result.stderr
    final = orjson.loads(result.stdout)
    assert final["status"] == "resolved" and final["resolved_by"] == "adv-ana"
    assert [h["event"] for h in final["history"]] == [
        "raised", "escalated", "acknowledged", "callback_recorded", "resolved"]
    events = asyncio.run(_alert_events(settings, survey["event_id"], count=5))
    for event in events:
        validator("alert.v1")(event)  # the published contract
    assert [e["event"] for e in events] == [h["event"] for h in final["history"]]
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5]

    listed = orjson.loads(run_cxt(settings, "alerts", "--status", "resolved", "--json").stdout)
    assert alert["alert_id"] in {a["alert_id"] for a in listed["alerts"]}


def test_invalid_actions_are_dead_lettered_with_a_reason(pipeline) -> None:
    settings, worker = pipeline
    survey = envelope("survey", _customer(), score=2)
    asyncio.run(produce_events(settings, [survey]))
    alert = asyncio.run(_alert_events(settings, survey["event_id"], event="raised"))[0]
    tag = uuid.uuid4().hex[:6]
    bad = {
        f"{tag}-1": ({"alert_id": "AL-nope", "action": "acknowledge", "actor": "adv-ben"},
                     "unknown_alert"),
        f"{tag}-2": ({"alert_id": alert["alert_id"], "action": "acknowledge",
                      "actor": "nobody"}, "unknown_actor"),
        f"{tag}-3": ({"alert_id": alert["alert_id"], "action": "resolve", "actor": "adv-ben"},
                     "invalid_transition"),
        f"{tag}-4": ({"alert_id": alert["alert_id"], "action": "callback", "actor": "adv-ben"},
                     "schema_violation"),
    }
    asyncio.run(produce(settings, settings.topics.alert_actions,
                        [(k.encode(), orjson.dumps(v)) for k, (v, _) in bad.items()]
                        + [(f"{tag}-5".encode(), b"not json")]))
    letters = asyncio.run(read_topic(
        settings, settings.topics.deadletter,
        until=lambda ms: sum(bool(m.key and m.key.decode().startswith(tag)) for m in ms) >= 5))
    reasons = {m.key.decode(): orjson.loads(m.value)["reason"] for m in letters
               if m.key and m.key.decode().startswith(tag)}
    assert reasons == {**{k: r for k, (_, r) in bad.items()}, f"{tag}-5": "invalid_json"}
    worker.assert_alive()


def test_a_resolve_without_a_cause_is_dead_lettered_by_the_worker_too(pipeline) -> None:
    """A client that skips the CLI's and the API's check still cannot close an
    unclassified alert: the worker refuses it with category_required."""
    settings, worker = pipeline
    survey = envelope("survey", _customer(), score=1, comment="meh", reason_codes=[])
    asyncio.run(produce_events(settings, [survey]))
    alert = asyncio.run(_alert_events(settings, survey["event_id"], event="raised"))[0]
    assert alert["category"] == "unclassified"
    assert run_cxt(settings, "alerts", "ack", alert["alert_id"], "--actor", "adv-ana"
                   ).returncode == 0
    key = f"nocause-{uuid.uuid4().hex[:6]}"
    asyncio.run(produce(settings, settings.topics.alert_actions, [(key.encode(), orjson.dumps(
        {"alert_id": alert["alert_id"], "action": "resolve", "actor": "adv-ana"}))]))
    letters = asyncio.run(read_topic(
        settings, settings.topics.deadletter,
        until=lambda ms: any(m.key and m.key.decode() == key for m in ms)))
    letter = next(orjson.loads(m.value) for m in letters if m.key and m.key.decode() == key)
    validator("deadletter.v1")(letter)
    assert letter["reason"] == "category_required"
    assert "pass a category, one of skill, business_operations, customer_expectation" \
        in letter["message"]
    shown = orjson.loads(run_cxt(settings, "alerts", "show", alert["alert_id"], "--json").stdout)
    assert shown["status"] == "acknowledged"
    worker.assert_alive()


def test_hour_by_hour_report_counts_late_arrivals_in_their_hour(pipeline) -> None:
    settings, _ = pipeline
    queue = f"q-{uuid.uuid4().hex[:6]}"  # isolates this test's surveys in the counters
    plan = [  # (occurred_at, score)
        ("2026-11-21T23:10:00Z", 1), ("2026-11-21T23:50:00Z", 5),
        ("2026-11-22T00:05:00Z", 2), ("2026-11-22T00:20:00Z", 4), ("2026-11-22T00:40:00Z", 5),
        ("2026-11-22T02:15:00+01:00", 3),  # 01:15 UTC
    ]
    surveys = [envelope("survey", _customer(), occurred_at=t, score=s, queue=queue,
                        contact_channel="chat", agent_id="A-9") for t, s in plan]
    late = envelope("survey", _customer(), occurred_at="2026-11-21T23:30:00Z", score=4,
                    queue=queue, contact_channel="chat", agent_id="A-9")
    asyncio.run(produce_events(settings, surveys))
    asyncio.run(produce_events(settings, [late, surveys[0]]))  # late, and a duplicate
    now = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)

    async def hourly() -> list:
        rows = await survey_rows(settings, hours=4, queue=queue, now=now)
        return rows if sum(r.responses for r in rows) == 7 else []

    rows = asyncio.run(eventually(hourly, timeout=20))
    assert rows, "the surveys were not all counted"
    by_hour = {r.period: r for r in rows}
    eleven, midnight, one = (by_hour["2026-11-21 23:00"], by_hour["2026-11-22 00:00"],
                             by_hour["2026-11-22 01:00"])
    assert (eleven.responses, eleven.bottom2, eleven.top2) == (3, 1, 2)
    assert (midnight.responses, midnight.bottom2, midnight.top2) == (3, 1, 2)
    assert (one.responses, one.bottom2, one.top2) == (1, 0, 0)
    assert midnight.bottom2_share == pytest.approx(1 / 3)
    assert midnight.mean_score == pytest.approx((2 + 4 + 5) / 3)

    days = asyncio.run(survey_rows(settings, days=2, queue=queue, now=now))
    assert [(d.period, d.responses) for d in days] == [("2026-11-21", 3), ("2026-11-22", 4)]
    other_agent = asyncio.run(survey_rows(settings, hours=4, queue=queue, agent="A-1", now=now))
    assert sum(r.responses for r in other_agent) == 0

    table = run_cxt(settings, "report", "--hours", "48", "--queue", queue)
    assert table.returncode == 0, table.stderr
