"""cx.self-service.v1 through the worker's pipeline on the real Redis: notes and
preferences kept, the account entries filed (under the root of a merged customer) and
published, bad events dead-lettered naming the field, redelivery and out-of-order
preferences changing nothing, a batch's round trips constant, erasure taking it all.
Batches are fed to the pipeline by hand; the Kafka path and the worker process are in
tests/integration/dashboard/test_self_service_api.py."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from redis.asyncio import Redis as AsyncRedis

from cxt.localstack import LocalStack
from domain.rules import DEFAULT_RULES_PATH, load_rules
from kernel.settings import Settings
from schemas import validate_timeline_entry
from store.alerts import AlertStore
from store.keys import Keys
from store.self_service import SelfServiceStore
from store.timeline import TimelineStore
from streams.processor import Processor
from streams.records import Outgoing, Record
from tests.support.helpers import isolated

T = TypeVar("T")
_offsets = itertools.count(1)
PREFERENCES = {"preferred_channel": "chat",
               "contact_hours": {"from": "09:00", "to": "17:30", "days": ["mon", "tue"]},
               "time_zone": "Europe/Warsaw", "language": "pl", "accessibility_needs": None,
               "no_sales_offers": True}


class CountingRedis:
    """The async client, counting round trips: each awaited command and each pipeline."""

    def __init__(self, client: AsyncRedis) -> None:
        self._client = client
        self.round_trips = 0

    def pipeline(self, *args: Any, **kwargs: Any) -> Any:
        pipe = self._client.pipeline(*args, **kwargs)
        execute = pipe.execute

        async def counted(*a: Any, **k: Any) -> Any:
            self.round_trips += 1
            return await execute(*a, **k)
        pipe.execute = counted  # type: ignore[method-assign]
        return pipe

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._client, name)
        if not asyncio.iscoroutinefunction(found):
            return found

        async def counted(*a: Any, **k: Any) -> Any:
            self.round_trips += 1
            return await found(*a, **k)
        return counted


def _run(settings: Settings, scenario: Callable[[Processor, CountingRedis], Awaitable[T]]) -> T:
    async def main() -> T:
        client = AsyncRedis.from_url(settings.redis_url)
        counting = CountingRedis(client)
        keys = Keys(settings.redis_prefix)
        processor = Processor(
            settings, TimelineStore(counting, keys,  # type: ignore[arg-type]
                                    max_entries=settings.timeline_max_entries, max_age_days=400),
            AlertStore(counting, keys, counters_ttl_days=400),  # type: ignore[arg-type]
            load_rules(DEFAULT_RULES_PATH))
        try:
            return await scenario(processor, counting)
        finally:
            await client.aclose()
    return asyncio.run(main())


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _event(cid: str, event_type: str, payload: dict, *, at: str = "2026-11-22T10:00:00Z",
           event_id: str | None = None) -> dict:
    return {"event_id": event_id or uuid.uuid4().hex, "type": event_type, "customer_id": cid,
            "occurred_at": at, "actor": f"customer:{cid}", "payload": payload}


def _record(settings: Settings, event: dict | bytes, offset: int | None = None) -> Record:
    value = event if isinstance(event, bytes) else orjson.dumps(event)
    key = event["customer_id"].encode() if isinstance(event, dict) else None
    return Record(settings.topics.self_service, 0, next(_offsets) if offset is None else offset,
                  key, value)


def _topic(out: list[Outgoing], topic: str) -> list[dict]:
    return [orjson.loads(m.value) for m in out if m.topic == topic and m.value is not None]


def _own(p: Processor) -> SelfServiceStore:
    return SelfServiceStore(p.store.redis, p.store.keys)


def test_notes_and_preferences_are_kept_filed_and_published(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = f"C-{_uid()}"
    added = _event(cid, "account.note_added", {"note_id": "n1", "text": "<b>Call after 6</b>"})
    second = _event(cid, "account.note_added", {"note_id": "n2", "text": "Second"},
                    at="2026-11-22T11:00:00Z")
    prefs = _event(cid, "account.preferences_set", PREFERENCES, at="2026-11-22T10:30:00+01:00")

    async def scenario(p: Processor, _: CountingRedis) -> tuple:
        out = await p.self_service([_record(settings, e) for e in (added, second, prefs)])
        kept = (await _own(p).own_words([cid]))[0]
        deleted = await p.self_service([_record(settings, _event(
            cid, "account.note_deleted", {"note_id": "n1"}, at="2026-11-22T12:00:00Z"))])
        return out, kept, deleted, await _own(p).notes(cid), await p.store.read(cid)

    out, kept, deleted, notes_after, timeline = _run(settings, scenario)
    entries = _topic(out, settings.topics.timeline)
    assert [(e["type"], e["channel"], e["customer_id"]) for e in entries] == [
        ("account.note_added", "account", cid), ("account.note_added", "account", cid),
        ("account.preferences_set", "account", cid)]
    for entry in entries:
        validate_timeline_entry(entry)
        assert entry["actor"] == f"customer:{cid}"
        assert entry["source"]["topic"] == settings.topics.self_service
    assert entries[0]["payload"] == added["payload"]  # as received: the page escapes it
    assert [n["note_id"] for n in kept.notes] == ["n2", "n1"]  # newest first
    assert kept.notes[1] == {"note_id": "n1", "text": "<b>Call after 6</b>",
                             "added_at": "2026-11-22T10:00:00.000Z",
                             "event_id": added["event_id"]}
    assert kept.preferences == {**PREFERENCES, "set_at": "2026-11-22T09:30:00.000Z",
                                "event_id": prefs["event_id"],
                                "occurred_ms": 1_795_339_800_000}
    assert [e["type"] for e in _topic(deleted, settings.topics.timeline)] == [
        "account.note_deleted"]
    assert [n["note_id"] for n in notes_after] == ["n2"]
    assert len(timeline) == 4 and {e["channel"] for e in timeline} == {"account"}
    # The deleted note's text is gone from the timeline too; its entry keeps its place.
    by_id = {e["event_id"]: e for e in timeline}
    assert by_id[added["event_id"]]["payload"] == {"note_id": "n1", "text": None}
    assert by_id[added["event_id"]]["redacted"] is True
    assert by_id[second["event_id"]]["payload"]["text"] == "Second"
    validate_timeline_entry(by_id[added["event_id"]])


def test_bad_events_are_dead_lettered_naming_the_field_and_the_rest_goes_on(
        stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = f"C-{_uid()}"
    good = _event(cid, "account.note_added", {"note_id": "ok", "text": "fine"})
    bad = [
        _event(cid, "account.note_added", {"note_id": "n", "text": "x" * 2001}),
        _event(cid, "account.preferences_set", {**PREFERENCES, "time_zone": "Europe/Atlantis"}),
        _event(cid, "account.preferences_set",
               {**PREFERENCES, "contact_hours": {"from": "09:00", "to": "09:00",
                                                 "days": ["mon"]}}),
        _event(cid, "account.note_deleted", {"note_id": "n", "sneaky": 1}),
        {**_event(cid, "account.note_added", {"note_id": "n", "text": "t"}), "at": "x"},
    ]

    async def scenario(p: Processor, _: CountingRedis) -> tuple:
        out = await p.self_service([_record(settings, e) for e in bad]
                                   + [_record(settings, b"not json"), _record(settings, good)])
        return out, await _own(p).notes(cid), await _own(p).preferences(cid)

    out, notes, preferences = _run(settings, scenario)
    dead = _topic(out, settings.topics.deadletter)
    assert [(d["reason"], d["message"].split(":")[0]) for d in dead] == [
        ("schema_violation", "payload.text"), ("schema_violation", "payload.time_zone"),
        ("schema_violation", "payload.contact_hours.to"), ("schema_violation", "payload"),
        ("schema_violation", "value"), ("invalid_json", "not valid UTF-8 JSON")]
    assert "sneaky" in dead[3]["message"] and "'at'" in dead[4]["message"]
    assert [d["topic"] for d in dead] == [settings.topics.self_service] * 6
    assert [e["event_id"] for e in _topic(out, settings.topics.timeline)] == [good["event_id"]]
    assert [n["note_id"] for n in notes] == ["ok"] and preferences is None


def test_redelivery_duplicates_and_late_preferences_change_nothing(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = f"C-{_uid()}"
    note = _event(cid, "account.note_added", {"note_id": "n1", "text": "hello"})
    gone = _event(cid, "account.note_deleted", {"note_id": "n1"}, at="2026-11-22T10:05:00Z")
    newer = _event(cid, "account.preferences_set", {**PREFERENCES, "language": "en"},
                   at="2026-11-22T12:00:00Z")
    older = _event(cid, "account.preferences_set", {**PREFERENCES, "language": "cy"},
                   at="2026-11-22T11:00:00Z")

    async def scenario(p: Processor, _: CountingRedis) -> tuple:
        batch = [_record(settings, note, 101), _record(settings, gone, 102),
                 _record(settings, newer, 103)]
        first = await p.self_service(batch)
        state = (await _own(p).own_words([cid]))[0]
        again = await p.self_service(batch)  # redelivered as is: same records
        # The note's event from another record (a replay) must not bring the note back.
        replayed = await p.self_service([_record(settings, note, 900)])
        late = await p.self_service([_record(settings, older)])
        return first, state, again, replayed, late, (await _own(p).own_words([cid]))[0], \
            await p.store.read(cid)

    first, state, again, replayed, late, after, timeline = _run(settings, scenario)
    assert state.notes == [] and state.preferences["language"] == "en"
    # A redelivery publishes the same entries again (the first publish may have been lost);
    # only accepted_at is new, as for interactions.
    def same(entries: list[dict]) -> list[dict]:
        return [{k: v for k, v in e.items() if k != "accepted_at"} for e in entries]
    assert same(_topic(again, settings.topics.timeline)) == same(
        _topic(first, settings.topics.timeline))
    assert _topic(replayed, settings.topics.timeline) == []
    assert [e["payload"]["language"] for e in _topic(late, settings.topics.timeline)] == ["cy"]
    assert after == state  # nothing changed: the older preferences lost
    assert len(timeline) == 4


def test_a_merged_customer_files_under_its_root(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    root, merged = f"C-{_uid()}", f"C-{_uid()}"

    async def scenario(p: Processor, _: CountingRedis) -> tuple:
        await p.customers([Record(settings.topics.customers, 0, next(_offsets), c.encode(),
                                  orjson.dumps(r)) for c, r in (
            (root, {"customer_id": root}),
            (merged, {"customer_id": merged, "merged_into": root}))])
        out = await p.self_service([
            _record(settings, _event(merged, "account.note_added", {"note_id": "m1",
                                                                     "text": "via merged"})),
            _record(settings, _event(merged, "account.preferences_set", PREFERENCES))])
        return out, (await _own(p).own_words([root, merged]))

    out, (of_root, of_merged) = _run(settings, scenario)
    entries = _topic(out, settings.topics.timeline)
    assert {(e["customer_id"], e["filed_under"]) for e in entries} == {(root, merged)}
    assert [n["note_id"] for n in of_root.notes] == ["m1"]
    assert of_root.preferences is not None and of_root.preferences["language"] == "pl"
    assert of_merged.notes == [] and of_merged.preferences is None


def test_a_batch_costs_the_same_round_trips_whatever_its_size(stack: LocalStack) -> None:
    settings = isolated(stack.settings)

    def batch(n: int) -> list[Record]:
        out = []
        for i in range(n):
            cid = f"C-{_uid()}"
            kind = i % 3
            if kind == 0:
                event = _event(cid, "account.note_added", {"note_id": f"n{i}", "text": "t"})
            elif kind == 1:
                event = _event(cid, "account.note_deleted", {"note_id": f"n{i}"})
            else:
                event = _event(cid, "account.preferences_set", PREFERENCES)
            out.append(_record(settings, event))
        return out

    async def scenario(p: Processor, counting: CountingRedis) -> list[int]:
        trips = []
        await p.self_service(batch(3))  # loads the scripts
        for size in (3, 30, 600):
            records = batch(size)
            before = counting.round_trips
            out = await p.self_service(records)
            trips.append(counting.round_trips - before)
            assert len(_topic(out, settings.topics.timeline)) == size
        return trips

    trips = _run(settings, scenario)
    # The timeline insert, the deleted notes' entries (to redact), the notes and preferences.
    assert trips == [3, 3, 3], trips


def test_erasure_takes_the_notes_and_preferences(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = f"C-{_uid()}"

    async def scenario(p: Processor, _: CountingRedis) -> tuple:
        await p.customers([Record(settings.topics.customers, 0, next(_offsets), cid.encode(),
                                  orjson.dumps({"customer_id": cid}))])
        await p.self_service([
            _record(settings, _event(cid, "account.note_added", {"note_id": "n", "text": "t"})),
            _record(settings, _event(cid, "account.preferences_set", PREFERENCES))])
        before = (await _own(p).own_words([cid]))[0]
        await p.customers([Record(settings.topics.customers, 0, next(_offsets), cid.encode(),
                                  None)])
        keys = Keys(settings.redis_prefix)
        left = await p.store.redis.exists(keys.notes(cid), keys.preferences(cid),
                                          keys.timeline(cid))
        return before, left

    before, left = _run(settings, scenario)
    assert before.notes and before.preferences
    assert left == 0
