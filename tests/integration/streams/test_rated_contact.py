"""A survey's contact_id finds the rated interaction by event_id or by the channel's own id,
whichever of the survey and the contact arrives first (real Kafka, Redis and worker)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import orjson
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from cxt.localstack import LocalStack
from domain.alerts import alert_id_for
from domain.rules import DEFAULT_RULES_PATH, load_rules
from kernel.settings import Settings
from schemas import validator
from store.alerts import AlertStore
from store.keys import Keys
from store.timeline import TimelineStore
from streams.processor import Processor
from streams.records import Record
from tests.support.helpers import (
    alerts_through_a_marker,
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import WorkerProcess

CHECK_ALERT = validator("alert.v1")


@pytest.fixture(scope="module")
def worker(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Settings, WorkerProcess]]:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    process = WorkerProcess(settings, tmp_path_factory.mktemp("rated")).start()
    try:
        probe = envelope("chat", _customer())
        asyncio.run(produce_events(settings, [probe]))
        seen = asyncio.run(read_topic(
            settings, settings.topics.timeline, timeout=90,
            until=lambda ms: any(orjson.loads(m.value)["event_id"] == probe["event_id"]
                                 for m in ms)))
        assert seen, process.log()
        yield settings, process
    finally:
        process.stop()


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def _survey(cid: str | None, contact_id: str, **fields: object) -> dict:
    # A comment and no reason codes that no rule matches: only the rated contact can decide.
    return envelope("survey", cid, occurred_at="2026-11-22T10:00:00Z", score=1,
                    contact_id=contact_id, comment="meh", **fields)  # type: ignore[arg-type]


def _alerts(settings: Settings, survey: dict, *, until: int, timeout: float = 30) -> list[dict]:
    """The alert events of the survey published so far, once there are `until` of them
    (or at the timeout); each checked against the published schema."""
    def mine(records: list) -> list[dict]:
        values = (orjson.loads(r.value) for r in records if r.value is not None)
        return [a for a in values if a["survey_event_id"] == survey["event_id"]]

    found = mine(asyncio.run(read_topic(settings, settings.topics.alerts, timeout=timeout,
                                        until=lambda ms: len(mine(ms)) >= until)))
    for alert in found:
        CHECK_ALERT(alert)
    return found


def _wait_stored(settings: Settings, cid: str, event_ids: set[str]) -> None:
    """Until the worker has stored these entries in the customer's timeline."""
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    key = f"{settings.redis_prefix}:{{{cid}}}:tl"
    try:
        assert asyncio.run(eventually(lambda: event_ids <= set(client.zrange(key, 0, -1)),
                                      timeout=30)), (cid, event_ids)
    finally:
        client.close()


def test_a_survey_naming_the_call_id_rates_the_call_it_follows(worker) -> None:
    settings, _ = worker
    cid = _customer()
    call = envelope("call", cid, event_id=f"nt-call-{uuid.uuid4().hex[:6]}",
                    event_type="call.ended", occurred_at="2026-11-22T09:30:00Z",
                    call_id="nt9", transfers=3, queue="billing-uk", outcome="unresolved")
    asyncio.run(produce_events(settings, [call]))
    _wait_stored(settings, cid, {call["event_id"]})
    survey = _survey(cid, "nt9", contact_channel="call")
    asyncio.run(produce_events(settings, [survey]))

    [alert] = _alerts(settings, survey, until=1)
    assert alert["event"] == "raised"
    assert alert["rated_contact"]["event_id"] == call["event_id"]
    assert (alert["category"], alert["category_rule"]) == ("skill", "many-transfers")
    assert alert["contact_id"] == "nt9"  # as the survey named it
    rated = [e["event_id"] for e in alert["context"] if e.get("rated")]
    assert rated == [call["event_id"]]  # the advisory page marks it


def test_a_survey_before_its_call_is_raised_at_once_then_updated_with_the_call(worker) -> None:
    settings, _ = worker
    cid = _customer()
    survey = _survey(cid, "k-early")
    asyncio.run(produce_events(settings, [survey, survey]))  # a source duplicate too
    [raised] = _alerts(settings, survey, until=1)
    assert (raised["event"], raised["version"]) == ("raised", 1)
    assert raised["rated_contact"] is None and raised["category"] == "unclassified"

    started = envelope("call", cid, event_type="call.started",
                       occurred_at="2026-11-22T09:20:00Z", call_id="k-early")
    ended = envelope("call", cid, event_type="call.ended", occurred_at="2026-11-22T09:31:00Z",
                     call_id="k-early", transfers=2, outcome="transferred")
    asyncio.run(produce_events(settings, [ended, started, ended]))  # started after ended

    events = _alerts(settings, survey, until=2)
    assert [(a["event"], a["version"]) for a in events] == [("raised", 1), ("updated", 2)]
    updated = events[1]
    assert updated["rated_contact"]["event_id"] == ended["event_id"]  # the ended call wins
    assert (updated["category"], updated["category_rule"]) == ("skill", "many-transfers")
    assert [h["event"] for h in updated["history"]] == ["raised", "updated"]
    assert updated["history"][1]["rated_contact"] == ended["event_id"]
    assert [e["event_id"] for e in updated["context"] if e.get("rated")] == [ended["event_id"]]
    # Nothing more: the redelivered call and the call.started change nothing.
    assert [a["version"] for a in asyncio.run(alerts_through_a_marker(settings, cid))
            if a["survey_event_id"] == survey["event_id"]] == [1, 2]


@pytest.mark.parametrize(("event_type", "ids", "named_by"), [
    ("chat.ended", {"chat_id": "ch-1"}, "ch-1"),
    ("email.received", {"message_id": "<m-1@mail.example.com>", "thread_id": "thr-1"},
     "<m-1@mail.example.com>"),
    ("email.sent", {"message_id": "<m-2@mail.example.com>", "thread_id": "thr-2"}, "thr-2"),
    ("social.post", {"post_id": "1234567890"}, "1234567890"),
    ("call.ended", {"call_id": "c-1"}, None),  # None: by its event_id, as before
])
def test_every_channel_id_names_its_contact_both_ways_round(worker, event_type, ids,
                                                             named_by) -> None:
    settings, _ = worker
    channel = event_type.split(".")[0]
    after_cid, before_cid = _customer(), _customer()
    contact_after = envelope(channel, after_cid, event_type=event_type, **ids)
    contact_before = envelope(channel, before_cid, event_type=event_type, **ids)
    asyncio.run(produce_events(settings, [contact_after]))
    _wait_stored(settings, after_cid, {contact_after["event_id"]})
    late = _survey(after_cid, named_by or contact_after["event_id"])
    early = _survey(before_cid, named_by or contact_before["event_id"])
    asyncio.run(produce_events(settings, [late, early]))
    assert _alerts(settings, late, until=1)[0]["rated_contact"]["event_id"] == \
        contact_after["event_id"]
    assert _alerts(settings, early, until=1)[0]["rated_contact"] is None
    asyncio.run(produce_events(settings, [contact_before]))
    events = _alerts(settings, early, until=2)
    assert [a["event"] for a in events] == ["raised", "updated"]
    assert events[1]["rated_contact"]["event_id"] == contact_before["event_id"]


def test_an_event_id_match_wins_over_a_channel_id_match(worker) -> None:
    settings, _ = worker
    cid = _customer()
    by_event_id = envelope("chat", cid, event_id=f"x-{uuid.uuid4().hex[:6]}",
                           event_type="chat.ended", chat_id="ch-9")
    by_channel_id = envelope("call", cid, event_type="call.ended",
                             call_id=by_event_id["event_id"], transfers=5)
    asyncio.run(produce_events(settings, [by_event_id, by_channel_id]))
    _wait_stored(settings, cid, {by_event_id["event_id"], by_channel_id["event_id"]})
    survey = _survey(cid, by_event_id["event_id"])
    asyncio.run(produce_events(settings, [survey]))
    [alert] = _alerts(settings, survey, until=1)
    assert alert["rated_contact"]["event_id"] == by_event_id["event_id"]
    assert alert["category"] == "unclassified"  # the call's transfers were not looked at


def test_a_contact_under_a_provisional_profile_rates_the_survey_once_linked(worker) -> None:
    settings, _ = worker
    cid = _customer()
    phone = f"+35386{uuid.uuid4().int % 10**7:07d}"
    # The call is known only by its phone; the survey tool knows the customer.
    call = envelope("call", identity={"phone": phone}, event_type="call.ended",
                    call_id="k-prov", transfers=4)
    survey = _survey(cid, "k-prov")
    asyncio.run(produce_events(settings, [call, survey]))
    [raised] = _alerts(settings, survey, until=1)
    assert raised["rated_contact"] is None

    record = {"customer_id": cid, "identifiers": {"phones": [phone]}}
    asyncio.run(produce(settings, settings.topics.customers,
                        [(cid.encode(), orjson.dumps(record))]))
    events = _alerts(settings, survey, until=2)
    assert [a["event"] for a in events] == ["raised", "updated"]
    assert events[1]["rated_contact"]["event_id"] == call["event_id"]
    assert events[1]["rated_contact"]["customer_id"] == cid
    assert events[1]["category"] == "skill"


def test_a_survey_under_a_provisional_profile_is_rated_once_linked(worker) -> None:
    settings, _ = worker
    cid = _customer()
    phone = f"+35387{uuid.uuid4().int % 10**7:07d}"
    call = envelope("call", cid, event_type="call.ended", call_id="k-prov2", transfers=2)
    survey = _survey(None, "k-prov2", identity={"phone": phone})
    asyncio.run(produce_events(settings, [call]))
    _wait_stored(settings, cid, {call["event_id"]})
    asyncio.run(produce_events(settings, [survey]))
    [raised] = _alerts(settings, survey, until=1)
    assert raised["rated_contact"] is None  # the survey's profile has no such call
    assert raised["alert_id"] == alert_id_for(survey["event_id"])

    record = {"customer_id": cid, "identifiers": {"phones": [phone]}}
    asyncio.run(produce(settings, settings.topics.customers,
                        [(cid.encode(), orjson.dumps(record))]))
    events = _alerts(settings, survey, until=2)
    assert [a["event"] for a in events] == ["raised", "updated"]
    assert events[1]["rated_contact"]["event_id"] == call["event_id"]
    assert events[1]["category"] == "skill"


def test_a_redelivered_batch_updates_nothing_twice(stack: LocalStack) -> None:
    """The worker's pipeline on the same records again, as after a crash before the
    commit: the alert is announced again at most, never changed a second time."""
    settings = isolated(stack.settings)
    cid = _customer()
    survey = _survey(cid, "k-again")
    call = envelope("call", cid, event_type="call.ended", call_id="k-again", transfers=2)
    surveys = [Record(settings.topics.survey, 0, 7, None, orjson.dumps(survey))]
    calls = [Record(settings.topics.call, 1, 9, None, orjson.dumps(call))]

    async def main() -> list[list[dict]]:
        client = AsyncRedis.from_url(settings.redis_url)
        processor = _processor(settings, client)
        try:
            published = [await processor.interactions(batch)
                         for batch in (surveys, surveys, calls, calls, calls)]
            stored = await processor.alerts.get(alert_id_for(survey["event_id"]))
        finally:
            await client.aclose()
        alerts_topic = settings.topics.alerts
        return [*([orjson.loads(m.value) for m in out if m.topic == alerts_topic]
                  for out in published), [stored]]

    first, again, rated, rated_again, third, [stored] = asyncio.run(main())
    assert [(a["event"], a["version"]) for a in first] == [("raised", 1)]
    assert [(a["event"], a["version"]) for a in again] == [("raised", 1)]  # at least once
    assert [(a["event"], a["version"]) for a in rated] == [("updated", 2)]
    assert rated_again == third == rated  # published again as it is, not changed again
    assert stored == rated[0]
    assert [h["event"] for h in stored["history"]] == ["raised", "updated"]


def test_erasure_takes_the_waits_with_the_customer(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = _customer()
    waiting = _survey(cid, "k-never")  # its contact never comes
    call = envelope("call", cid, event_type="call.ended", call_id="k-erase")
    records = [Record(settings.topics.survey, 0, 1, None, orjson.dumps(waiting)),
               Record(settings.topics.call, 0, 2, None, orjson.dumps(call))]
    tombstone = Record(settings.topics.customers, 0, 3, cid.encode(), None)
    keys = Keys(settings.redis_prefix)

    async def main() -> tuple[set[str], set[str]]:
        client = AsyncRedis.from_url(settings.redis_url)
        processor = Processor(
            settings, TimelineStore(client, keys, max_entries=100, max_age_days=400),
            AlertStore(client, keys, counters_ttl_days=400), load_rules(DEFAULT_RULES_PATH))
        try:
            await processor.interactions(records)
            mine = f"{settings.redis_prefix}:*{cid}*"
            before = {k.decode() async for k in client.scan_iter(mine)}
            await processor.customers([tombstone])
            after = {k.decode() async for k in client.scan_iter(mine)}
        finally:
            await client.aclose()
        return before, after

    before, after = asyncio.run(main())
    assert keys.rated_waits(cid) in before
    assert after == set()


def test_a_later_entry_of_the_same_call_updates_the_rated_contact_again(stack: LocalStack
                                                                        ) -> None:
    settings = isolated(stack.settings)
    cid = _customer()
    survey = _survey(cid, "k-two")
    started = envelope("call", cid, event_type="call.started",
                       occurred_at="2026-11-22T09:20:00Z", call_id="k-two")
    ended = envelope("call", cid, event_type="call.ended", occurred_at="2026-11-22T09:31:00Z",
                     call_id="k-two", transfers=2)
    batches = [[Record(settings.topics.survey, 0, 1, None, orjson.dumps(survey))],
               [Record(settings.topics.call, 0, 2, None, orjson.dumps(started))],
               [Record(settings.topics.call, 0, 3, None, orjson.dumps(ended))],
               [Record(settings.topics.call, 0, 4, None, orjson.dumps(started))]]  # again

    async def main() -> list[list[dict]]:
        client = AsyncRedis.from_url(settings.redis_url)
        processor = _processor(settings, client)
        try:
            published = [await processor.interactions(batch) for batch in batches]
        finally:
            await client.aclose()
        return [[orjson.loads(m.value) for m in out if m.topic == settings.topics.alerts]
                for out in published]

    raised, by_started, by_ended, duplicate = asyncio.run(main())
    assert [(a["event"], a["version"]) for a in raised] == [("raised", 1)]
    assert [(a["event"], a["version"], a["rated_contact"]["event_id"], a["category"])
            for a in by_started] == [("updated", 2, started["event_id"], "unclassified")]
    assert [(a["event"], a["version"], a["rated_contact"]["event_id"], a["category"])
            for a in by_ended] == [("updated", 3, ended["event_id"], "skill")]
    assert duplicate == []  # the call.started again (another record) changes nothing


def test_a_contact_stored_between_the_lookup_and_the_alert_still_rates_it(stack: LocalStack
                                                                          ) -> None:
    """Another worker stores the contact after the survey's lookup registered the wait but
    before the alert is stored: its update finds no alert, so the raise catches up."""
    settings = isolated(stack.settings)
    cid = _customer()
    survey = _survey(cid, "k-between")
    call = envelope("call", cid, event_type="call.ended", call_id="k-between", transfers=2)
    keys = Keys(settings.redis_prefix)

    async def main() -> tuple[list[dict], list[dict]]:
        client = AsyncRedis.from_url(settings.redis_url)

        def processor() -> Processor:
            return Processor(
                settings, TimelineStore(client, keys, max_entries=100, max_age_days=400),
                AlertStore(client, keys, counters_ttl_days=400), load_rules(DEFAULT_RULES_PATH))

        ours, other = processor(), processor()
        put_new = ours.alerts.put_new
        by_other: list = []

        async def contact_first(*args: object, **kwargs: object) -> list:
            by_other.extend(await other.interactions(
                [Record(settings.topics.call, 0, 2, None, orjson.dumps(call))]))
            return await put_new(*args, **kwargs)  # type: ignore[arg-type]

        ours.alerts.put_new = contact_first  # type: ignore[method-assign]
        try:
            published = await ours.interactions(
                [Record(settings.topics.survey, 0, 1, None, orjson.dumps(survey))])
        finally:
            await client.aclose()
        return ([orjson.loads(m.value) for m in by_other if m.topic == settings.topics.alerts],
                [orjson.loads(m.value) for m in published if m.topic == settings.topics.alerts])

    from_other, from_ours = asyncio.run(main())
    assert from_other == []  # the alert was not stored yet
    assert [(a["event"], a["version"]) for a in from_ours] == [("raised", 1), ("updated", 2)]
    assert from_ours[1]["rated_contact"]["event_id"] == call["event_id"]


def _processor(settings: Settings, client: AsyncRedis) -> Processor:
    """The worker's batch pipeline on `client`, without Kafka: batches are fed by hand."""
    keys = Keys(settings.redis_prefix)
    return Processor(settings, TimelineStore(client, keys, max_entries=100, max_age_days=400),
                     AlertStore(client, keys, counters_ttl_days=400),
                     load_rules(DEFAULT_RULES_PATH))
