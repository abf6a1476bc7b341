"""Negative-interaction alerts end to end: each signal through the real broker, worker and
Redis; one open alert per customer and intent; survey linking; resolve and reopen."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator

import orjson
import pytest

from cxt.localstack import LocalStack
from domain.alerts import alert_id_for
from kernel.settings import Settings
from schemas import validator
from tests.support.helpers import create_topics, envelope, produce, produce_events, read_topic
from tests.support.helpers import isolated as isolated_settings
from tests.support.processes import WorkerProcess

ANGRY = "Your service is useless and I am furious, nothing ever works."
CALM = "Thanks, that sorted it. Have a nice day."


@pytest.fixture(scope="module")
def pipeline(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[Settings]:
    settings = isolated_settings(stack.settings)
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("negative")).start()
    try:
        probe = envelope("call", f"warmup-{uuid.uuid4().hex[:6]}")
        asyncio.run(produce_events(settings, [probe]))
        asyncio.run(read_topic(
            settings, settings.topics.timeline, timeout=90, until=lambda ms: any(
                orjson.loads(m.value)["event_id"] == probe["event_id"] for m in ms)))
        yield settings
    finally:
        worker.stop()


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def _chat(cid: str, *lines: str, intent: str = "billing", at: str = "2026-11-22T10:00:00Z",
          **payload: object) -> dict:
    messages = [{"from": "agent", "text": "Hello, how can I help?", "at": at}]
    messages += [{"from": "customer", "text": line, "at": at} for line in lines]
    return envelope("chat", cid, occurred_at=at, event_type="chat.ended",
                    chat_id=f"CH-{uuid.uuid4().hex[:8]}", intent=intent, queue="billing-chat",
                    messages=messages, **payload)


def _call(cid: str, call_id: str, *, at: str, intent: str = "billing", kind: str = "call.ended",
          **payload: object) -> dict:
    return envelope("call", cid, occurred_at=at, event_type=kind, call_id=call_id,
                    intent=intent, queue="billing-uk", direction="inbound", **payload)


def _alerts(settings: Settings, cid: str, until: Callable[[list[dict]], bool],
            timeout: float = 30) -> list[dict]:
    """Negative-interaction alert versions of the customer on cx.alerts.v1, in order."""
    def mine(ms: list) -> list[dict]:
        found = [orjson.loads(m.value) for m in ms if m.value is not None]
        return [a for a in found if a["customer_id"] == cid]

    records = asyncio.run(read_topic(settings, settings.topics.alerts, timeout=timeout,
                                     until=lambda ms: until(mine(ms))))
    return mine(records)


def _negative(alerts: list[dict]) -> list[dict]:
    return [a for a in alerts if a["kind"] == "negative_interaction"]


def _latest(alerts: list[dict]) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for a in alerts:
        if a["alert_id"] not in latest or a["version"] > latest[a["alert_id"]]["version"]:
            latest[a["alert_id"]] = a
    return latest


def _rules(alert: dict) -> list[str]:
    return [s["rule"] for s in alert["signals"]]


def test_negative_chat_raises_an_alert_with_its_sentiment_signal(pipeline: Settings) -> None:
    cid = _customer()
    chat = _chat(cid, ANGRY)
    asyncio.run(produce_events(pipeline, [chat, _chat(_customer(), CALM)]))
    [alert] = _negative(_alerts(pipeline, cid, lambda a: bool(_negative(a))))
    validator("alert.v1")(alert)
    assert alert["event"] == "raised" and alert["status"] == "open"
    assert alert["intent"] == "billing" and alert["contact_id"] == chat["event_id"]
    assert alert["survey_event_id"] is None and alert["score"] is None
    [signal] = alert["signals"]
    assert signal["rule"] == "negative_sentiment" and signal["score"] < -0.3
    assert signal["event_id"] == chat["event_id"]
    assert signal["contact"] == f"chat:{chat['payload']['chat_id']}"
    assert alert["ack_deadline"] and alert["context"][0]["event_id"] == chat["event_id"]
    # The timeline entry carries the sentiment of the customer's words only.
    entries = asyncio.run(read_topic(
        pipeline, pipeline.topics.timeline, timeout=20, until=lambda ms: any(
            orjson.loads(m.value)["event_id"] == chat["event_id"] for m in ms if m.value)))
    [entry] = [orjson.loads(m.value) for m in entries
               if m.value and orjson.loads(m.value)["event_id"] == chat["event_id"]]
    validator("timeline-entry.v1")(entry)
    assert entry["sentiment"]["label"] == "negative" and entry["sentiment"]["source"] == "model"
    assert entry["sentiment"]["chars"] == len(ANGRY)


def test_escalation_words_in_an_email_and_one_alert_per_intent(pipeline: Settings) -> None:
    cid = _customer()
    mail = envelope("email", cid, occurred_at="2026-11-22T11:00:00Z", direction="inbound",
                    thread_id="T-1", intent="billing", subject="Bill for November",
                    body="Please pass this to your supervisor, I want to make a formal complaint.")
    chat = _chat(cid, ANGRY, at="2026-11-22T11:05:00Z")
    other = _chat(cid, ANGRY, intent="technical", at="2026-11-22T11:06:00Z")
    asyncio.run(produce_events(pipeline, [mail]))
    _alerts(pipeline, cid, lambda a: bool(_negative(a)))
    asyncio.run(produce_events(pipeline, [chat, other]))
    alerts = _negative(_alerts(pipeline, cid, lambda a: len(_latest(_negative(a))) == 2
                               and any(x["version"] == 2 for x in _negative(a))))
    latest = _latest(alerts)
    billing = next(a for a in latest.values() if a["intent"] == "billing")
    technical = next(a for a in latest.values() if a["intent"] == "technical")
    assert billing["version"] == 2 and billing["event"] == "updated"
    assert _rules(billing)[0] == "escalation_language"
    assert billing["signals"][0]["detail"] == "said 'supervisor'"
    assert "negative_sentiment" in _rules(billing)
    assert _rules(technical) == ["negative_sentiment"]


def test_repeat_contact_counts_a_call_once_across_its_events(pipeline: Settings) -> None:
    cid = _customer()
    first = [_call(cid, "K-1", at="2026-11-20T09:00:00Z", kind="call.started"),
             _call(cid, "K-1", at="2026-11-20T09:10:00Z")]
    second = _chat(cid, "I still have a question about my bill.", at="2026-11-21T09:00:00Z")
    third = _call(cid, "K-3", at="2026-11-23T09:00:00Z", kind="call.started")
    asyncio.run(produce_events(pipeline, [*first, second]))
    asyncio.run(produce_events(pipeline, [third, _call(cid, "K-3", at="2026-11-23T09:20:00Z")]))
    [alert] = _latest(_negative(_alerts(pipeline, cid, lambda a: bool(_negative(a))))).values()
    [signal] = alert["signals"]  # once, though both events of the third call say it
    assert signal["rule"] == "repeat_contact" and signal["count"] == 3
    assert signal["contact"] == "call:K-3"


def test_operational_pain_transfers_wait_and_abandoned_call(pipeline: Settings) -> None:
    cid = _customer()
    events = [
        _call(cid, "P-1", at="2026-11-22T08:00:00Z", intent="moving", transfers=4),
        _call(cid, "P-2", at="2026-11-22T08:30:00Z", intent="outage", wait_seconds=900),
        _call(cid, "P-3", at="2026-11-22T09:00:00Z", intent="roaming", outcome="abandoned"),
        _chat(cid, "Hi, a question about roaming charges.", intent="roaming",
              at="2026-11-22T09:20:00Z"),
    ]
    asyncio.run(produce_events(pipeline, events))
    latest = _latest(_negative(_alerts(pipeline, cid, lambda a: len(_latest(_negative(a))) == 3)))
    by_intent = {a["intent"]: a for a in latest.values()}
    assert [(s["rule"], s.get("count")) for s in by_intent["moving"]["signals"]] == [
        ("many_transfers", 4)]
    assert [(s["rule"], s.get("count")) for s in by_intent["outage"]["signals"]] == [
        ("long_wait", 900)]
    [abandoned] = by_intent["roaming"]["signals"]
    assert abandoned["rule"] == "abandoned_then_contact" and "call:P-3" in abandoned["detail"]
    # A transferred call in the skill category: the alert rules read the contact too.
    assert by_intent["moving"]["category"] == "skill"


def test_public_post_weighs_more_than_a_private_one(pipeline: Settings) -> None:
    cid, quiet = _customer(), _customer()
    public = envelope("social", cid, text="meh, not great", public=True, sentiment=-0.25)
    private = envelope("social", quiet, text="meh, not great", public=False, sentiment=-0.25)
    marker = _chat(quiet, ANGRY, intent="marker")
    asyncio.run(produce_events(pipeline, [public, private, marker]))
    [alert] = _negative(_alerts(pipeline, cid, lambda a: bool(_negative(a))))
    [signal] = alert["signals"]
    assert signal["weight"] == 1.5 and signal["score"] == -0.25
    # The marker's alert is there, so the private post was processed and raised nothing.
    quiet_alerts = _negative(_alerts(pipeline, quiet, lambda a: bool(_negative(a))))
    assert [a["intent"] for a in quiet_alerts] == ["marker"]


def test_bottom_2_box_survey_links_to_the_open_alert_and_resolve_reopens(
        pipeline: Settings) -> None:
    cid = _customer()
    chat = _chat(cid, ANGRY)
    asyncio.run(produce_events(pipeline, [chat]))
    [raised] = _negative(_alerts(pipeline, cid, lambda a: bool(_negative(a))))
    survey = envelope("survey", cid, score=1, contact_id=chat["payload"]["chat_id"],
                      contact_channel="chat", comment="awful")
    asyncio.run(produce_events(pipeline, [survey]))
    survey_alert_id = alert_id_for(survey["event_id"])
    alerts = _alerts(pipeline, cid, lambda a: any(
        x["alert_id"] == raised["alert_id"] and x.get("linked_alerts") for x in a)
        and any(x["alert_id"] == survey_alert_id for x in a))
    latest = _latest(alerts)
    assert latest[survey_alert_id]["linked_alert_id"] == raised["alert_id"]
    assert latest[raised["alert_id"]]["linked_alerts"] == [survey_alert_id]
    assert latest[raised["alert_id"]]["version"] == 2
    # Resolved (with a category), the situation is closed: the next signal opens a new one.
    actions = [{"alert_id": raised["alert_id"], "action": a, "actor": "adv-ana",
                "action_id": uuid.uuid4().hex, **extra}
               for a, extra in (("acknowledge", {}),
                                ("resolve", {"category": "business_operations"}))]
    asyncio.run(_produce_actions(pipeline, actions))
    _alerts(pipeline, cid, lambda a: any(x["alert_id"] == raised["alert_id"]
                                         and x["status"] == "resolved" for x in a))
    asyncio.run(produce_events(pipeline, [_chat(cid, ANGRY, at="2026-11-22T12:00:00Z")]))
    again = _latest(_negative(_alerts(pipeline, cid, lambda a: len(_latest(_negative(a))) == 2)))
    reopened = [a for a in again.values() if a["alert_id"] != raised["alert_id"]]
    assert len(reopened) == 1 and reopened[0]["status"] == "open"


async def _produce_actions(settings: Settings, actions: list[dict]) -> None:
    await produce(settings, settings.topics.alert_actions,
                  [(a["alert_id"].encode(), orjson.dumps(a)) for a in actions])
