"""The CRM summary feed (consumers/summary.py): the figures, its Redis state, and the feed
end to end (worker + `cxt summaries` as processes on the real broker and Redis)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from redis.asyncio import Redis

from consumers.summary import open_alert_ids, read_batch, summarize, survey_summary
from cxt.localstack import LocalStack
from domain.alerts import alert_id_for
from domain.negative import negative_alert_id
from kernel.settings import Settings, Topics
from schemas import validator
from store.keys import Keys
from store.summaries import (
    ERASURE_MARK_MS,
    AlertSeen,
    Erasure,
    SummaryState,
    SurveySeen,
    Unmerge,
)
from store.timeline import NewEntry, TimelineStore
from tests.support.helpers import (
    REPO,
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    read_topic,
)
from tests.support.processes import (
    SummaryProcess,
    WorkerProcess,
    run_cxt,
)

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
validate_summary = validator("customer-summary.v1")


def at(ago: timedelta, now: datetime = NOW) -> str:
    return (now - ago).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(event_id: str, channel: str, kind: str, ago: timedelta, **payload: Any) -> dict:
    return {"event_id": event_id, "customer_id": "C-1", "channel": channel,
            "type": f"{channel}.{kind}", "occurred_at": at(ago), "accepted_at": at(ago),
            "payload": payload}


def newest_first(entries: list[dict]) -> list[dict]:
    return sorted(entries, key=lambda e: (e["occurred_at"], e["event_id"]), reverse=True)


DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)

# --------------------------------------------------------------------------- summarize (pure)


def test_summarize_counts_distinct_contacts_in_both_windows() -> None:
    timeline = newest_first([
        entry("a1", "call", "started", DAY, call_id="A", intent=" Billing "),
        entry("a2", "call", "ended", DAY - 10 * MINUTE, call_id="A", outcome="resolved"),
        entry("h1", "chat", "started", 3 * DAY, chat_id="H", intent="billing"),
        entry("h2", "chat", "ended", 3 * DAY - 5 * MINUTE, chat_id="H"),
        entry("s1", "social", "post", 2 * DAY, network="x"),
        entry("n1", "call", "started", 6 * DAY, intent="technical"),  # no call_id: by event_id
        entry("t1", "email", "received", 10 * DAY, thread_id="T", intent="billing"),
        entry("t2", "email", "sent", 9 * DAY, thread_id="T"),
        entry("b1", "call", "started", 20 * DAY, call_id="B", intent="technical"),
        entry("c1", "call", "started", 40 * DAY, call_id="C", intent="billing"),  # too old
        entry("v1", "survey", "response", 12 * HOUR, score=1),  # a survey is not a contact
        {**entry("x1", "chat", "started", DAY), "occurred_at": "yesterday"},  # unreadable
    ])
    survey = {"event_id": "v1", "score": 1, "scale_min": 1, "scale_max": 5,
              "occurred_at": at(12 * HOUR), "bottom_2_box": True}
    summary = summarize("C-1", timeline, survey, 3, ["AL-2", "AL-1", "AL-2"], NOW_MS)
    validate_summary(summary)
    assert summary == {
        "customer_id": "C-1",
        "as_of": "2026-11-22T12:00:00.000Z",
        # The newest entry is the call's end; its intent comes from the call's start.
        "last_contact": {"event_id": "a2", "occurred_at": at(DAY - 10 * MINUTE),
                         "channel": "call", "type": "call.ended", "intent": "billing",
                         "outcome": "resolved"},
        "contacts_7d": {"call": 2, "chat": 1, "email": 0, "social": 1, "total": 4},
        "contacts_30d": {"call": 3, "chat": 1, "email": 1, "social": 1, "total": 6},
        "repeat_contacts": [
            {"intent": "billing", "contacts_30d": 3, "last_at": at(DAY)},
            {"intent": "technical", "contacts_30d": 2, "last_at": at(6 * DAY)},
        ],
        "last_survey": survey,
        "bottom_2_box_count": 3,
        "open_alerts": 2,
        "open_alert_ids": ["AL-1", "AL-2"],
    }


def test_summarize_empty_and_old_only() -> None:
    empty = summarize("C-1", [], None, 0, [], NOW_MS)
    validate_summary(empty)
    zero = {"call": 0, "chat": 0, "email": 0, "social": 0, "total": 0}
    assert (empty["last_contact"], empty["contacts_7d"], empty["contacts_30d"],
            empty["repeat_contacts"], empty["open_alerts"]) == (None, zero, zero, [], 0)
    old = summarize("C-1", [entry("m1", "email", "received", 90 * DAY, thread_id="T")], None, 0,
                    [], NOW_MS)
    assert old["last_contact"]["event_id"] == "m1"  # however old
    assert old["last_contact"]["intent"] is None and old["last_contact"]["outcome"] is None
    assert old["contacts_30d"] == zero


def test_summarize_window_edges_and_future_entries() -> None:
    timeline = newest_first([
        entry("f1", "chat", "started", -HOUR, chat_id="F"),  # a source clock ahead: counts
        entry("e7", "call", "started", 7 * DAY, call_id="E7"),  # exactly 7 days: inside
        entry("o7", "call", "started", 7 * DAY + MINUTE, call_id="O7"),
        entry("e30", "email", "received", 30 * DAY, thread_id="E30"),
        entry("o30", "email", "received", 30 * DAY + MINUTE, thread_id="O30"),
    ])
    summary = summarize("C-1", timeline, None, 0, [], NOW_MS)
    assert summary["contacts_7d"] == {"call": 1, "chat": 1, "email": 0, "social": 0, "total": 2}
    assert summary["contacts_30d"] == {"call": 2, "chat": 1, "email": 1, "social": 0, "total": 4}
    assert summary["last_contact"]["event_id"] == "f1"


def test_repeat_contacts_order_and_intent_folding() -> None:
    timeline = newest_first([
        entry("1", "call", "started", DAY, call_id="1", intent="Refund"),
        entry("2", "chat", "started", 2 * DAY, chat_id="2", intent="refund"),
        entry("3", "call", "started", 3 * DAY, call_id="3", intent="billing"),
        entry("4", "email", "received", 4 * DAY, thread_id="4", intent="billing"),
        entry("5", "call", "started", 5 * DAY, call_id="5", intent="moving"),
        entry("6", "call", "ended", 5 * DAY - MINUTE, call_id="5", intent="moving"),  # same call
    ])
    repeats = summarize("C-1", timeline, None, 0, [], NOW_MS)["repeat_contacts"]
    # Equal counts: the most recent first; one call of two entries is one contact.
    assert repeats == [{"intent": "refund", "contacts_30d": 2, "last_at": at(DAY)},
                       {"intent": "billing", "contacts_30d": 2, "last_at": at(3 * DAY)}]


def test_survey_summary() -> None:
    assert survey_summary(entry("v", "survey", "response", DAY, score=0, scale_min=0,
                                scale_max=10)) == {
        "event_id": "v", "score": 0, "scale_min": 0, "scale_max": 10,
        "occurred_at": at(DAY), "bottom_2_box": True}
    assert survey_summary(entry("v", "survey", "response", DAY, score=3))["bottom_2_box"] is False
    assert survey_summary(entry("v", "survey", "response", DAY, score="1")) is None


def _record(topic: str, key: str | None, value: dict | bytes | None, ts: int = NOW_MS
            ) -> SimpleNamespace:
    raw = orjson.dumps(value) if isinstance(value, dict) else value
    return SimpleNamespace(topic=topic, key=key.encode() if key else None, value=raw,
                           timestamp=ts)


def test_read_batch() -> None:
    topics = Topics()
    survey = entry("v", "survey", "response", DAY, score=2)
    alert = {"alert_id": "AL-1", "customer_id": "C-1", "version": 2, "status": "acknowledged",
             "history": [{"event": "raised", "at": at(2 * HOUR)},
                         {"event": "acknowledged", "at": at(HOUR)}]}
    records = [
        _record(topics.timeline, "C-1", entry("c", "call", "started", DAY)),
        _record(topics.timeline, "C-1", survey),
        _record(topics.alerts, "C-1", alert),
        _record(topics.timeline, "~phone:+4420", {**survey, "customer_id": "~phone:+4420"}),
        _record(topics.timeline, "C-1", b"not json"),
        _record(topics.customers, "C-2", None, ts=NOW_MS - 5),
        _record(topics.customers, "C-3", {"customer_id": "C-3"}),
    ]
    changes = read_batch(records, topics, NOW_MS)  # type: ignore[arg-type]
    assert changes.erasures == {"C-2": NOW_MS - 5}
    assert changes.surveys == [SurveySeen("C-1", NOW_MS - 86_400_000, NOW_MS - 86_400_000, "v",
                                          survey_summary(survey), True)]  # type: ignore[arg-type]
    assert changes.alerts == [AlertSeen("C-1", NOW_MS - 3_600_000, "AL-1", 2, "acknowledged")]
    assert changes.touched == {"C-1": NOW_MS - 3_600_000}
    assert changes.skipped == {"provisional": 1, "unreadable": 1, "customer record": 1}


def test_read_batch_identity_events() -> None:
    topics = Topics()

    def event(kind: str, cid: str, **fields: Any) -> dict:
        return {"identity_event_id": "ID-" + "0" * 24, "event": kind, "customer_id": cid,
                "at": at(MINUTE), "cause": {"actor": "x"}, **fields}

    changes = read_batch([
        _record(topics.identity, "C-1", event("merged", "C-1", into="C-2", root="C-3")),
        _record(topics.identity, "C-4", event("unmerged", "C-4", into="C-2", root="C-3")),
        _record(topics.identity, "C-5", event("claimed", "C-5", identifiers=["phone:+44"])),
        _record(topics.identity, "C-6", None),
        _record(topics.identity, "C-7", event("merged", "C-7")),  # no root: unreadable
    ], topics, NOW_MS)  # type: ignore[list-item]
    assert changes.merges == {"C-1": NOW_MS - 60_000}
    assert changes.unmerges == [Unmerge("C-4", "C-3")]
    assert changes.touched == {"C-3": NOW_MS - 60_000, "C-4": NOW_MS - 60_000}
    assert changes.skipped == {"identity event": 1, "tombstone": 1, "unreadable": 1}


# --------------------------------------------------------------------------- Redis state


StateTest = Callable[[SummaryState, TimelineStore, Keys, redis.Redis], Awaitable[None]]


def _with_state(stack: LocalStack, body: StateTest) -> None:
    """Run `body` with the feed's state and the worker's timeline store on a fresh prefix."""
    keys = Keys(f"t{uuid.uuid4().hex[:8]}")
    sync = redis.Redis.from_url(stack.settings.redis_url)

    async def run() -> None:
        client = Redis.from_url(stack.settings.redis_url)
        try:
            await body(SummaryState(client, keys),
                       TimelineStore(client, keys, max_entries=1000, max_age_days=400),
                       keys, sync)
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    finally:
        sync.close()


def _survey(event_id: str, occurred: int, *, b2b: bool, at_ms: int = NOW_MS) -> SurveySeen:
    return SurveySeen("C-1", at_ms, occurred, event_id, {"event_id": event_id}, b2b)


async def _store(store: TimelineStore, entries: list[tuple[dict, int]]) -> None:
    await store.add([NewEntry("C-1", e["event_id"], occurred, orjson.dumps(e), {}, e)
                     for e, occurred in entries])


DAY_MS = 86_400_000


def test_state_keeps_the_newest_survey_and_counts_bottom_2_box_once(stack) -> None:
    async def body(summaries: SummaryState, *_: Any) -> None:
        newest = _survey("s3", NOW_MS - DAY_MS, b2b=False)
        older = [_survey("s1", NOW_MS - 3 * DAY_MS, b2b=True),
                 _survey("s2", NOW_MS - 2 * DAY_MS, b2b=True)]
        assert await summaries.apply([], [newest, *older], []) == [1, 1, 1]
        await summaries.apply([], [*older, newest, older[0]], [])  # a replay, in another order
        [read] = await summaries.read(["C-1"], NOW_MS - 30 * DAY_MS)
        assert (read.last_survey, read.bottom_2_box_count) == ({"event_id": "s3"}, 2)
        # Same instant: the greater event_id wins, whatever the arrival order.
        await summaries.apply([], [_survey("s4", NOW_MS - DAY_MS, b2b=False)], [])
        await summaries.apply([], [_survey("s0", NOW_MS - DAY_MS, b2b=False)], [])
        assert (await summaries.read(["C-1"], 0))[0].last_survey == {"event_id": "s4"}

    _with_state(stack, body)


def test_state_keeps_the_highest_alert_version(stack) -> None:
    async def body(summaries: SummaryState, *_: Any) -> None:
        # Versions out of order: an escalation check may republish what it read after an
        # acknowledgement was published, and two workers publish independently.
        await summaries.apply([], [], [AlertSeen("C-1", NOW_MS, "AL-1", 1, "open"),
                                       AlertSeen("C-1", NOW_MS, "AL-2", 1, "open"),
                                       AlertSeen("C-1", NOW_MS, "AL-1", 3, "resolved"),
                                       AlertSeen("C-1", NOW_MS, "AL-1", 2, "acknowledged"),
                                       AlertSeen("C-1", NOW_MS, "AL-2", 2, "escalated")])
        [read] = await summaries.read(["C-1"], 0)
        assert read.alerts == {"AL-1": "resolved", "AL-2": "escalated"}
        assert open_alert_ids(read.alerts) == ["AL-2"]

    _with_state(stack, body)


def test_state_erasure_deletes_and_guards(stack) -> None:
    erased_at, before, after = NOW_MS - 1000, NOW_MS - 2000, NOW_MS

    async def body(summaries: SummaryState, store: TimelineStore, keys: Keys,
                   sync: redis.Redis) -> None:
        late = ([_survey("s1", before - DAY_MS, b2b=True, at_ms=before)],
                [AlertSeen("C-1", before, "AL-1", 1, "open")])
        await summaries.apply([], *late)
        old = entry("old", "chat", "started", 2 * HOUR, chat_id="O")
        new = {**entry("new", "chat", "started", HOUR, chat_id="N"), "accepted_at": at(-HOUR)}
        await _store(store, [(old, NOW_MS - 2 * 3_600_000), (new, NOW_MS - 3_600_000)])
        # The erasure, with late copies of that survey and alert in the same batch.
        assert await summaries.apply([Erasure("C-1", erased_at)], *late) == [0, 0]
        assert sync.exists(*summaries.state_keys("C-1")) == 0
        assert int(sync.get(keys.summary_erased("C-1"))) == erased_at
        assert 0 < sync.pttl(keys.summary_erased("C-1")) <= ERASURE_MARK_MS
        [read] = await summaries.read(["C-1"], 0)
        assert (read.erased_ms, read.last_survey, read.bottom_2_box_count, read.alerts) == (
            erased_at, None, 0, {})
        assert [e["event_id"] for e in read.entries] == ["new"]  # accepted before: left out
        # Data from after the erasure counts; an older erasure does not move the marker back.
        assert await summaries.apply([], [_survey("s2", after, b2b=True, at_ms=after)],
                                     [AlertSeen("C-1", after, "AL-2", 1, "open")]) == [1, 1]
        await summaries.apply([Erasure("C-1", erased_at - 10)], [], [])
        assert (await summaries.read(["C-1"], 0))[0].erased_ms == erased_at

    _with_state(stack, body)


def test_state_reads_older_pages_for_a_last_contact(stack) -> None:
    async def body(summaries: SummaryState, store: TimelineStore, *_: Any) -> None:
        await _store(store, [(entry(f"e{i}", "survey", "response", (40 + i) * DAY, score=4),
                              NOW_MS - (40 + i) * DAY_MS) for i in range(5)]
                     + [(entry("m", "email", "received", 50 * DAY), NOW_MS - 50 * DAY_MS),
                        (entry("w", "chat", "started", DAY), NOW_MS - DAY_MS)])
        [read] = await summaries.read(["C-1"], NOW_MS - 30 * DAY_MS)
        assert [e["event_id"] for e in read.entries] == ["w"]
        # Pages of 4 older entries, surveys left out (no contacts): none, then the e-mail.
        first, second = [(await summaries.older([read], NOW_MS - 30 * DAY_MS, offset, 4))[0]
                         for offset in (0, 4)]
        assert first == ([], True)
        assert ([e["event_id"] for e in second[0]], second[1]) == (["m"], False)

    _with_state(stack, body)


def test_state_merge_guards_and_take_back(stack) -> None:
    async def body(summaries: SummaryState, store: TimelineStore, keys: Keys,
                   sync: redis.Redis) -> None:
        def survey(cid: str, event_id: str, hours: int, *, b2b: bool = True,
                   moved: bool = False) -> SurveySeen:
            return SurveySeen(cid, NOW_MS, NOW_MS - hours * 3_600_000, event_id,
                              {"event_id": event_id}, b2b, moved)

        # R holds its own surveys r1 (b2b) and r2, and C-1's c1 (b2b, the newest) and c2.
        stored = [("R", "r1", 3, 1), ("R", "r2", 4, 5), ("C-1", "c1", 1, 1), ("C-1", "c2", 2, 1)]
        await store.add([NewEntry(cid, eid, NOW_MS - h * 3_600_000, orjson.dumps(
            {**entry(eid, "survey", "response", h * HOUR, score=score), "customer_id": cid}),
            {}, {}) for cid, eid, h, score in stored])
        await summaries.apply([], [survey("R", "r1", 3), survey("R", "r2", 4, b2b=False),
                                   survey("R", "c1", 1, moved=True),
                                   survey("R", "c2", 2, moved=True)],
                              [AlertSeen("R", NOW_MS, "AL-R", 1, "open"),
                               AlertSeen("R", NOW_MS, "AL-C", 1, "open", moved=True)])
        [r] = await summaries.read(["R"], 0)
        # c1, c2 and AL-C are not R's in Redis: copies "read after the unmerge" are refused.
        assert (r.bottom_2_box_count, sorted(r.alerts)) == (1, ["AL-R"])
        sync.sadd(keys.customer_alerts("R"), "AL-R", "AL-C")
        sync.sadd(keys.customer_alerts("C-1"), "AL-C")
        for _, eid, h, score in stored[2:]:  # as if merged: C-1's entries now in R
            await store.add([NewEntry("R", eid, NOW_MS - h * 3_600_000, orjson.dumps(
                {**entry(eid, "survey", "response", h * HOUR, score=score),
                 "customer_id": "R"}), {}, {})])
        await summaries.apply([], [survey("R", "c1", 1, moved=True),
                                   survey("R", "c2", 2, moved=True)],
                              [AlertSeen("R", NOW_MS, "AL-C", 1, "open", moved=True)])
        [r] = await summaries.read(["R"], 0)
        assert (r.bottom_2_box_count, r.last_survey, sorted(r.alerts)) == (
            3, {"event_id": "c1"}, ["AL-C", "AL-R"])

        # C-1 merged: its state goes, and its late surveys are refused; not merged: kept.
        await summaries.apply([], [survey("C-1", "c1", 1)], [])
        sync.set(keys.merged_into("C-1"), "R")
        assert await summaries.forget_merged(["C-1", "R"]) == [True, False]
        assert await summaries.apply([], [survey("C-1", "c1", 1)], []) == [0]
        [c, r] = await summaries.read(["C-1", "R"], 0)
        assert (c.merged, c.bottom_2_box_count, r.merged, r.bottom_2_box_count) == (
            True, 0, False, 3)

        # Unmerged: c1, c2 are C-1's again (still in its timeline here), so is AL-C.
        sync.delete(keys.merged_into("C-1"))
        sync.zrem(keys.timeline("R"), "c1", "c2")
        await summaries.take_back([Unmerge("C-1", "R")], survey_summary)
        [r] = await summaries.read(["R"], 0)
        assert (r.bottom_2_box_count, sorted(r.alerts)) == (1, ["AL-R"])
        # Its newest survey was C-1's: replaced by the newest left in R's timeline.
        assert r.last_survey is not None and r.last_survey["event_id"] == "r1"

    _with_state(stack, body)


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def feed(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Settings, SummaryProcess]]:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    logs = tmp_path_factory.mktemp("summary")
    worker = WorkerProcess(settings, logs).start()
    summaries = SummaryProcess(settings, logs).start()
    try:
        probe = _customer()
        asyncio.run(produce_events(settings, [envelope("call", probe, call_id="P")]))
        assert _summaries(settings, probe, lambda ms: bool(ms), timeout=90), (
            worker.log() + summaries.log())
        yield settings, summaries
    finally:
        summaries.stop()
        worker.stop()


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


def _summaries(settings: Settings, customer_id: str, until: Callable[[list], bool],
               timeout: float = 30) -> list[dict | None]:
    """Every summary message of the customer so far (None for a tombstone), oldest first,
    once `until` holds for them (or the timeout)."""
    def mine(records: list) -> list[dict | None]:
        return [None if r.value is None else orjson.loads(r.value) for r in records
                if r.key == customer_id.encode()]

    records = asyncio.run(read_topic(settings, settings.topics.customer_summary,
                                     until=lambda ms: until(mine(ms)), timeout=timeout))
    return mine(records)


async def _read_all(settings: Settings, topic: str) -> list:
    """Every message of `topic` up to its current end."""
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        seen: list = []
        while [tp for tp in parts if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


def _all_summaries(settings: Settings, customer_id: str) -> list[dict | None]:
    """The customer's summary messages published so far (None for a tombstone)."""
    records = asyncio.run(_read_all(settings, settings.topics.customer_summary))
    return [None if r.value is None else orjson.loads(r.value) for r in records
            if r.key == customer_id.encode()]


def _latest(settings: Settings, customer_id: str, check: Callable[[dict], bool],
            timeout: float = 30) -> dict:
    found = _summaries(settings, customer_id, lambda ms: bool(ms) and ms[-1] is not None
                       and check(ms[-1]), timeout=timeout)
    assert found and found[-1] is not None and check(found[-1]), (
        f"no such summary of {customer_id}; the last is {found[-1] if found else None}")
    validate_summary(found[-1])
    return found[-1]


def test_summary_of_a_known_history(feed) -> None:
    settings, _ = feed
    cid = _customer()
    now = datetime.now(UTC)

    def ev(channel: str, ago: timedelta, kind: str | None = None, **payload: Any) -> dict:
        return envelope(channel, cid, occurred_at=at(ago, now),
                        event_type=f"{channel}.{kind}" if kind else None, **payload)

    call_a = [ev("call", DAY, "started", call_id="A", intent="billing", queue="billing-uk"),
              ev("call", DAY - 10 * MINUTE, "ended", call_id="A", outcome="resolved")]
    chat_h = [ev("chat", 3 * DAY, "started", chat_id="H", intent="billing"),
              ev("chat", 3 * DAY - 5 * MINUTE, "ended", chat_id="H")]
    mail_t = [ev("email", 10 * DAY, "received", thread_id="T", intent="Billing"),
              ev("email", 9 * DAY, "sent", thread_id="T")]
    social = ev("social", 2 * DAY, "post", network="x", text="still no refund")
    call_b = ev("call", 20 * DAY, "started", call_id="B", intent="technical")
    call_c = ev("call", 40 * DAY, "started", call_id="C", intent="billing")  # outside 30 days
    # The newest survey first, older ones after it: the newest by occurred_at must stay.
    newest = ev("survey", 12 * HOUR, score=4)
    b2b_recent = ev("survey", 2 * DAY, score=1, comment="rude")
    b2b_old = ev("survey", 50 * DAY, score=0, scale_min=0, scale_max=10)
    fine_old = ev("survey", 60 * DAY, score=5)
    asyncio.run(produce_events(settings, [*call_a, *chat_h, *mail_t, social, call_b, call_c,
                                          newest, b2b_recent, b2b_old, fine_old]))

    # The post's "still no" is escalation language: a negative-interaction alert, counted
    # among the open alerts like the two surveys'.
    summary = _latest(settings, cid, lambda s: s["open_alerts"] == 3
                      and s["contacts_30d"]["total"] == 5 and s["bottom_2_box_count"] == 2
                      and s["last_survey"] is not None)
    assert summary["customer_id"] == cid
    as_of = datetime.fromisoformat(summary["as_of"])
    assert now - timedelta(seconds=5) < as_of < datetime.now(UTC) + timedelta(seconds=1)
    assert summary["last_contact"] == {
        "event_id": call_a[1]["event_id"], "occurred_at": call_a[1]["occurred_at"],
        "channel": "call", "type": "call.ended", "intent": "billing", "outcome": "resolved"}
    assert summary["contacts_7d"] == {"call": 1, "chat": 1, "email": 0, "social": 1, "total": 3}
    assert summary["contacts_30d"] == {"call": 2, "chat": 1, "email": 1, "social": 1,
                                       "total": 5}
    assert summary["repeat_contacts"] == [
        {"intent": "billing", "contacts_30d": 3, "last_at": call_a[0]["occurred_at"]}]
    assert summary["last_survey"] == {
        "event_id": newest["event_id"], "score": 4, "scale_min": 1, "scale_max": 5,
        "occurred_at": newest["occurred_at"], "bottom_2_box": False}
    assert summary["bottom_2_box_count"] == 2
    assert summary["open_alerts"] == 3
    assert summary["open_alert_ids"] == sorted(
        [alert_id_for(b2b_recent["event_id"]), alert_id_for(b2b_old["event_id"]),
         negative_alert_id(cid, None, social["event_id"])])


def test_open_alerts_follow_the_alert_lifecycle(feed) -> None:
    settings, _ = feed
    cid = _customer()
    survey = envelope("survey", cid, score=2, comment="nobody called back",
                      occurred_at=at(HOUR, datetime.now(UTC)))
    alert_id = alert_id_for(survey["event_id"])
    asyncio.run(produce_events(settings, [survey]))
    raised = _latest(settings, cid, lambda s: s["open_alerts"] == 1)
    assert raised["open_alert_ids"] == [alert_id] and raised["bottom_2_box_count"] == 1
    assert raised["last_survey"]["bottom_2_box"] is True
    published = len(_all_summaries(settings, cid))

    ack = run_cxt(settings, "alerts", "ack", alert_id, "--actor", "adv-ana")
    assert ack.returncode == 0, ack.stderr
    # The acknowledged event brings a new summary: still open (being worked on).
    after_ack = _summaries(settings, cid, lambda ms: len(ms) > published)
    assert len(after_ack) > published, "no summary after the acknowledgement"
    assert after_ack[-1] is not None and after_ack[-1]["open_alert_ids"] == [alert_id]

    resolve = run_cxt(settings, "alerts", "resolve", alert_id, "--actor", "adv-ana",
                      "--category", "skill")  # no rule names "nobody called back"
    assert resolve.returncode == 0, resolve.stderr
    resolved = _latest(settings, cid, lambda s: s["open_alerts"] == 0)
    assert resolved["open_alert_ids"] == []
    assert resolved["bottom_2_box_count"] == 1  # the survey still counts


async def _send(settings: Settings, topic: str, key: str, value: bytes | None) -> tuple[int, int]:
    """Send one message; its (partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, value, key=key.encode())
        return meta.partition, meta.offset
    finally:
        await producer.stop()


async def _committed(settings: Settings) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(f"{settings.app_id}-summary")
        return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}
    finally:
        await admin.close()


def test_erasure_publishes_a_tombstone_and_late_messages_do_not_bring_it_back(feed) -> None:
    settings, _ = feed
    cid = _customer()
    keys = Keys(settings.redis_prefix)
    survey = envelope("survey", cid, score=1, occurred_at=at(HOUR, datetime.now(UTC)))
    asyncio.run(produce_events(settings, [envelope("chat", cid, chat_id="1"), survey]))
    _latest(settings, cid, lambda s: s["open_alerts"] == 1 and s["bottom_2_box_count"] == 1)
    # What the worker published before the erasure, to be sent again "late" below.
    entry_msg = next(m for m in asyncio.run(read_topic(
        settings, settings.topics.timeline, until=lambda ms: any(
            orjson.loads(m.value)["event_id"] == survey["event_id"] for m in ms)))
        if orjson.loads(m.value)["event_id"] == survey["event_id"])
    alert_msg = next(m for m in asyncio.run(read_topic(
        settings, settings.topics.alerts, until=lambda ms: any(
            m.key == cid.encode() for m in ms))) if m.key == cid.encode())

    client = redis.Redis.from_url(settings.redis_url)
    try:
        assert client.exists(*[keys.summary_survey(cid), keys.summary_bottom_2_box(cid),
                               keys.summary_alerts(cid)]) == 3
        asyncio.run(produce(settings, settings.topics.customers, [(cid.encode(), None)]))
        messages = _summaries(settings, cid, lambda ms: bool(ms) and ms[-1] is None)
        assert messages[-1] is None, f"no tombstone; the last message is {messages[-1]}"
        tombstones = len(messages)
        assert client.exists(*[keys.summary_survey(cid), keys.summary_bottom_2_box(cid),
                               keys.summary_alerts(cid)]) == 0
        assert 0 < client.pttl(keys.summary_erased(cid)) <= ERASURE_MARK_MS
        assert asyncio.run(eventually(lambda: not client.exists(keys.timeline(cid)),
                                      timeout=15)), "the worker did not erase the timeline"

        # Late copies of what was published before the erasure change nothing...
        late = [asyncio.run(_send(settings, settings.topics.timeline, cid, entry_msg.value)),
                asyncio.run(_send(settings, settings.topics.alerts, cid, alert_msg.value))]
        topics = (settings.topics.timeline, settings.topics.alerts)

        async def consumed() -> bool:
            done = await _committed(settings)
            return all(done.get((t, p), -1) > o for t, (p, o) in zip(topics, late, strict=True))

        assert asyncio.run(eventually(consumed, timeout=20)), "the late messages were not read"
        assert _all_summaries(settings, cid)[tombstones - 1:] == [None]
        # ... while a new interaction after the erasure is summarised on its own.
        chat = envelope("chat", cid, chat_id="2", occurred_at=at(MINUTE, datetime.now(UTC)))
        asyncio.run(produce_events(settings, [chat]))
        fresh = _latest(settings, cid, lambda s: s["contacts_30d"]["total"] >= 1)
        after = _all_summaries(settings, cid)[tombstones:]
        assert all(s is not None and s["last_survey"] is None and s["bottom_2_box_count"] == 0
                   and s["open_alerts"] == 0 for s in after), after
        assert fresh["contacts_30d"]["total"] == 1
        assert fresh["last_contact"]["event_id"] == chat["event_id"]
    finally:
        client.close()


def test_merge_and_unmerge_show_one_customer_then_two(feed) -> None:
    settings, _ = feed
    one, two = _customer(), _customer()
    keys = Keys(settings.redis_prefix)
    now = datetime.now(UTC)
    records = settings.topics.customers

    def record(cid: str, **fields: Any) -> tuple[bytes, bytes]:
        return cid.encode(), orjson.dumps({"customer_id": cid, **fields})

    asyncio.run(produce(settings, records, [record(one), record(two)]))
    # C-1's bottom-2-box survey is the newer: C-2's newest survey while merged.
    survey_one = envelope("survey", one, score=1, occurred_at=at(HOUR, now))
    survey_two = envelope("survey", two, score=2, occurred_at=at(2 * HOUR, now))
    fine_two = envelope("survey", two, score=5, occurred_at=at(3 * HOUR, now))
    chat_one = envelope("chat", one, chat_id="1", occurred_at=at(30 * MINUTE, now))
    call_two = envelope("call", two, call_id="2", occurred_at=at(20 * MINUTE, now))
    asyncio.run(produce_events(settings, [survey_one, chat_one, survey_two, fine_two,
                                          call_two]))
    alert_one, alert_two = alert_id_for(survey_one["event_id"]), alert_id_for(
        survey_two["event_id"])
    _latest(settings, one, lambda s: s["open_alerts"] == 1 and s["bottom_2_box_count"] == 1)
    _latest(settings, two, lambda s: s["open_alerts"] == 1 and s["bottom_2_box_count"] == 1
            and s["contacts_30d"]["total"] == 1
            and s["last_survey"]["event_id"] == survey_two["event_id"])

    asyncio.run(produce(settings, records, [record(one, merged_into=two)]))
    tombstoned = _summaries(settings, one, lambda ms: bool(ms) and ms[-1] is None)
    assert tombstoned[-1] is None, f"no tombstone of the merged customer: {tombstoned[-1]}"
    merged = _latest(settings, two, lambda s: s["bottom_2_box_count"] == 2
                     and s["open_alerts"] == 2 and s["contacts_30d"]["total"] == 2)
    assert merged["open_alert_ids"] == sorted([alert_one, alert_two])
    assert merged["last_survey"]["event_id"] == survey_one["event_id"]
    assert merged["last_contact"]["event_id"] == call_two["event_id"]
    client = redis.Redis.from_url(settings.redis_url)
    try:
        assert client.exists(keys.summary_survey(one), keys.summary_bottom_2_box(one),
                             keys.summary_alerts(one), keys.summary_erased(one)) == 0
    finally:
        client.close()
    published_two = len(_all_summaries(settings, two))

    asyncio.run(produce(settings, records, [record(one)]))  # merged_into gone: unmerge
    back = _latest(settings, one, lambda s: s["bottom_2_box_count"] == 1
                   and s["open_alerts"] == 1 and s["contacts_30d"]["total"] == 1)
    assert back["open_alert_ids"] == [alert_one]
    assert back["last_survey"]["event_id"] == survey_one["event_id"]
    assert back["last_contact"]["event_id"] == chat_one["event_id"]

    def alone(ms: list) -> bool:
        last = ms[-1] if len(ms) > published_two else None
        return last is not None and last["bottom_2_box_count"] == 1 and last[
            "open_alerts"] == 1 and last["contacts_30d"]["total"] == 1

    after = _summaries(settings, two, alone)
    assert alone(after), f"C-2 did not get back to its own figures: {after[-1]}"
    validate_summary(after[-1])
    assert after[-1]["open_alert_ids"] == [alert_two]
    # Its newest survey was C-1's: the newest of its own again.
    assert after[-1]["last_survey"]["event_id"] == survey_two["event_id"]
    assert after[-1]["last_contact"]["event_id"] == call_two["event_id"]
    assert all(m is not None for m in after[published_two:])


def test_sigterm_stops_cleanly(feed) -> None:
    # Last in this module: it stops the module's feed.
    _, summaries = feed
    summaries.assert_alive()
    summaries.stop(timeout=20)
    assert summaries.proc is not None and summaries.proc.returncode == 0, summaries.log()
    log = summaries.log()
    assert "status:" in log and "summaries: stopping" in log
    assert "Traceback" not in log, log


def test_schema_file_documents_every_field() -> None:
    document = orjson.loads((Path(REPO) / "schemas" / "customer-summary.v1.json").read_bytes())
    assert document["$schema"] == "http://json-schema.org/draft-07/schema#"
    for name, spec in document["properties"].items():
        assert spec.get("description"), name
        for inner, inner_spec in spec.get("properties", {}).items():
            assert inner_spec.get("description"), f"{name}.{inner}"
    assert set(document["required"]) == set(summarize("C", [], None, 0, [], NOW_MS))
