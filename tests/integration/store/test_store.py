"""The Redis timeline store on a real Redis: idempotence, order, retention, key layout."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import orjson
from redis.asyncio import Redis
from redis.crc import key_slot

from cxt.localstack import LocalStack
from store.alerts import AlertStore, RatedLookup
from store.identities import IdentityStore, ProfileChange
from store.keys import Keys, slot_groups
from store.timeline import AddResult, NewEntry, TimelineStore

DAY_MS = 86_400_000
T = TypeVar("T")


def _entry(cid: str, event_id: str, occurred_ms: int, offset: int = 0) -> NewEntry:
    source = {"topic": "cx.call.v1", "partition": 0, "offset": offset}
    body = {"event_id": event_id, "customer_id": cid, "channel": "call", "type": "call.started",
            "occurred_at": str(occurred_ms), "source": source}
    return NewEntry(cid, event_id, occurred_ms, orjson.dumps(body), source, body)


def _run(stack: LocalStack, scenario: Callable[[TimelineStore], Awaitable[T]],
         **limits: int) -> T:
    async def main() -> T:
        redis = Redis.from_url(stack.settings.redis_url)
        store = TimelineStore(redis, Keys(f"s{uuid.uuid4().hex[:6]}"),
                              max_entries=limits.get("max_entries", 1000),
                              max_age_days=limits.get("max_age_days", 400))
        try:
            return await scenario(store)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def test_same_event_twice_is_one_entry_and_redelivery_is_told_from_duplicates(stack) -> None:
    now = int(time.time() * 1000)

    async def scenario(store: TimelineStore) -> tuple:
        first = await store.add([_entry("C-1", "e1", now, offset=5)])
        redelivered = await store.add([_entry("C-1", "e1", now, offset=5)])
        duplicate = await store.add([_entry("C-1", "e1", now + 1, offset=9)])
        return first, redelivered, duplicate, await store.read("C-1")

    first, redelivered, duplicate, entries = _run(stack, scenario)
    assert first == [AddResult.NEW]
    assert redelivered == [AddResult.REDELIVERED]
    assert duplicate == [AddResult.DUPLICATE]
    assert [e["event_id"] for e in entries] == ["e1"]
    assert entries[0]["source"]["offset"] == 5  # the first one stays


def test_entries_read_newest_occurred_first_whatever_the_insert_order(stack) -> None:
    now = int(time.time() * 1000)
    offsets = [3, 1, 4, 0, 2]

    async def scenario(store: TimelineStore) -> tuple:
        await store.add([_entry("C-2", f"e{i}", now - i * 1000) for i in offsets])
        return await store.read("C-2"), await store.read("C-2", since_ms=now - 2500, limit=2)

    everything, window = _run(stack, scenario)
    assert [e["event_id"] for e in everything] == ["e0", "e1", "e2", "e3", "e4"]
    assert [e["event_id"] for e in window] == ["e0", "e1"]


def test_retention_trims_by_count_and_by_age_from_both_keys(stack) -> None:
    now = int(time.time() * 1000)

    async def scenario(store: TimelineStore) -> tuple:
        await store.add([_entry("C-3", f"e{i}", now - i * 1000) for i in range(8)])
        await store.add([_entry("C-3", "old", now - 40 * DAY_MS)])
        kept = [e["event_id"] for e in await store.read("C-3")]
        hash_size = await store.redis.hlen(store.keys.entries("C-3"))
        return kept, hash_size

    kept, hash_size = _run(stack, scenario, max_entries=5, max_age_days=30)
    assert kept == ["e0", "e1", "e2", "e3", "e4"]
    assert hash_size == 5


def test_profiles_claim_and_release_identities_and_erasure_deletes_everything(stack) -> None:
    async def scenario(store: TimelineStore) -> tuple:
        ids = IdentityStore(store.redis, store.keys)
        record = {"customer_id": "C-4", "identifiers": {"phones": ["+441"]}}
        await ids.apply_profiles([ProfileChange("C-4", record, claimed=("phone:+441",))])
        await store.add([_entry("C-4", "e1", int(time.time() * 1000))])
        claimed = await ids.claimants(["phone:+441"])
        # Another customer claims the phone too (shared); erasing C-4 leaves C-5's claim.
        await ids.apply_profiles([ProfileChange("C-5", {"customer_id": "C-5"},
                                                claimed=("phone:+441",))])
        shared = await ids.claimants(["phone:+441"])
        await ids.apply_profiles([ProfileChange("C-4", None, released=("phone:+441",))])
        await store.erase("C-4")
        keys = [k async for k in store.redis.scan_iter(f"{store.keys.prefix}:{{C-4}}*")]
        return claimed, shared, await ids.claimants(["phone:+441"]), keys

    claimed, shared, after, keys = _run(stack, scenario)
    assert claimed == [("C-4",)]
    assert shared == [("C-4", "C-5")]
    assert after == [("C-5",)]
    assert keys == []


def test_a_customers_keys_share_one_cluster_slot_even_with_odd_ids() -> None:
    keys = Keys("cxt")
    for cid in ("C-1001", "odd}id", "{x}", "a:b*c/../d", "~phone:+4420"):
        slots = {key_slot(k.encode()) for k in
                 (keys.timeline(cid), keys.entries(cid), keys.profile(cid),
                  keys.rated_waits(cid))}
        assert len(slots) == 1, cid
    assert keys.timeline("a}b") != keys.timeline("a")


def test_a_large_batch_with_repeats_gets_one_result_per_entry_in_order(stack) -> None:
    now = int(time.time() * 1000)
    # More entries than one script call takes, customers spread over the calls, and
    # the same event twice in the batch (a source duplicate) plus an earlier one.
    batch = [_entry(f"C-{i % 300}", f"e{i}", now - i, offset=i) for i in range(1200)]
    batch.append(_entry("C-7", "e7", now, offset=99_999))

    async def scenario(store: TimelineStore) -> tuple:
        await store.add([_entry("C-1", "e1", now - 1, offset=1)])  # already there
        results = await store.add(batch)
        return results, await store.read("C-7")

    results, c7 = _run(stack, scenario)
    assert len(results) == len(batch)
    assert results[1] == AddResult.REDELIVERED  # same record as the earlier insert
    assert results[-1] == AddResult.DUPLICATE  # e7 again from another offset
    assert results.count(AddResult.NEW) == 1199
    assert [e["event_id"] for e in c7] == [f"e{i}" for i in range(7, 1200, 300)]


def test_writes_survive_redis_forgetting_its_scripts(stack) -> None:
    now = int(time.time() * 1000)

    async def scenario(store: TimelineStore) -> tuple:
        first = await store.add([_entry("C-1", "a", now)])
        await store.redis.script_flush()  # as after a Redis restart
        second = await store.add([_entry("C-1", "b", now + 1)])
        return first, second, await store.read("C-1")

    first, second, entries = _run(stack, scenario)
    assert first == second == [AddResult.NEW]
    assert [e["event_id"] for e in entries] == ["b", "a"]


def test_a_new_client_loads_its_scripts_without_a_refused_call(stack) -> None:
    # The first call of each script from a client carries its SCRIPT LOAD in the same
    # round trip: Redis never answers NOSCRIPT (whose wording costs redis-py a
    # textwrap.shorten of the whole batch), and the replies are the calls' own.
    now = int(time.time() * 1000)

    async def scenario(store: TimelineStore) -> tuple:
        await store.redis.script_flush()
        await store.redis.config_resetstat()
        first = await store.add([_entry("C-1", "a", now), _entry("C-2", "b", now)])
        again = await store.add([_entry("C-1", "a", now, offset=1), _entry("C-3", "c", now)])
        errors = await store.redis.info("errorstats")
        return first, again, errors

    first, again, errors = _run(stack, scenario)
    assert first == [AddResult.NEW, AddResult.NEW]
    assert again == [AddResult.DUPLICATE, AddResult.NEW]
    assert "errorstat_NOSCRIPT" not in errors


def test_slot_groups_keep_each_slot_together_in_order_and_bounded() -> None:
    keys = Keys("cxt")
    items = [(f"C-{i % 50}", i) for i in range(400)]
    groups = slot_groups(items, lambda item: keys.timeline(item[0]), 7, one_slot=False)
    assert sorted(i for g in groups for _, i in g) == list(range(400))
    for group in groups:
        assert len(group) <= 7
        assert len({key_slot(keys.timeline(cid).encode()) for cid, _ in group}) == 1
        assert [i for _, i in group] == sorted(i for _, i in group)
    single = slot_groups(items, lambda item: keys.timeline(item[0]), 150, one_slot=True)
    assert [len(g) for g in single] == [150, 150, 100]
    assert [i for g in single for _, i in g] == list(range(400))


def test_surveys_are_counted_once_per_hour_even_when_repeated(stack) -> None:
    from domain.survey_metrics import metric_fields
    from store.alerts import AlertStore, SurveyCount

    low = metric_fields("call", "billing-uk", "A-1", 1, 1, 5)
    high = metric_fields("chat", "tech-uk", "A-2", 5, 1, 5)

    async def main() -> tuple:
        redis = Redis.from_url(stack.settings.redis_url)
        keys = Keys(f"s{uuid.uuid4().hex[:6]}")
        alerts = AlertStore(redis, keys, counters_ttl_days=30)
        try:
            await alerts.count_surveys([SurveyCount("s1", "2026112210", low),
                                        SurveyCount("s2", "2026112210", high),
                                        SurveyCount("s1", "2026112210", low),  # same batch
                                        SurveyCount("s3", "2026112211", low)])
            await redis.script_flush()
            await alerts.count_surveys([SurveyCount("s2", "2026112210", high)])  # again
            return (await alerts.counters(["2026112210", "2026112211"]),
                    await redis.ttl(keys.survey_counters("2026112210")))
        finally:
            await redis.aclose()

    counters, ttl = asyncio.run(main())
    ten = {k.decode(): int(v) for k, v in counters["2026112210"].items()}
    eleven = {k.decode(): int(v) for k, v in counters["2026112211"].items()}
    assert ten == {**low, **high}
    assert eleven == low
    assert 29 * 86_400 < ttl <= 30 * 86_400


# --- rated contacts found by channel id (domain.rated, AlertStore.rated_contacts) -----

def _contact(cid: str, event_id: str, occurred_ms: int, event_type: str, **payload: object
             ) -> NewEntry:
    channel = event_type.split(".")[0]
    source = {"topic": f"cx.{channel}.v1", "partition": 0, "offset": occurred_ms}
    body = {"event_id": event_id, "customer_id": cid, "channel": channel, "type": event_type,
            "occurred_at": str(occurred_ms), "payload": payload, "source": source}
    return NewEntry(cid, event_id, occurred_ms, orjson.dumps(body), source, body)


async def _rated(store: TimelineStore, cid: str, *refs: str) -> list[str | None]:
    """The event_id of the entry each ref names as a rated contact (None: none)."""
    alerts = AlertStore(store.redis, store.keys, counters_ttl_days=1)
    found = await alerts.rated_contacts([RatedLookup(cid, ref, 1) for ref in refs])
    return [None if r.contact is None else r.contact["event_id"] for r in found]


def test_channel_ids_name_the_latest_occurred_entry_whatever_the_arrival_order(stack) -> None:
    now = int(time.time() * 1000)
    started = _contact("C-1", "e-start", now - 600_000, "call.started", call_id="k1")
    ended = _contact("C-1", "e-end", now - 60_000, "call.ended", call_id="k1", transfers=3)
    mail = _contact("C-1", "e-mail", now, "email.received", message_id="<m1@x>",
                    thread_id="thr-1")
    post = _contact("C-1", "e-post", now, "social.post", post_id="p1")
    chat = _contact("C-2", "e-chat", now, "chat.ended", chat_id="k1")  # another customer
    # A chat whose payload has a call_id (not a chat's own id) and JSON that needs escaping.
    odd = _contact("C-1", "e-odd", now, "chat.ended", call_id="k2", chat_id='q"\\u/é')

    async def scenario(store: TimelineStore) -> tuple[list, list]:
        await store.add([ended, mail])
        await store.add([started, post, chat, odd])  # call.started arrives last
        await store.add([started])  # and again
        return (await _rated(store, "C-1", "k1", "<m1@x>", "thr-1", "p1", "k2", 'q"\\u/é',
                             "e-start", "nothing"),
                await _rated(store, "C-2", "k1", "e-end"))

    one, two = _run(stack, scenario)
    assert one == ["e-end", "e-mail", "e-mail", "e-post", None, "e-odd", "e-start", None]
    assert two == ["e-chat", None]


def test_a_channel_id_is_found_far_down_a_long_timeline(stack) -> None:
    now = int(time.time() * 1000)
    chats = [_contact("C-6", f"e{i}", now - i, "chat.ended", chat_id=f"k{i}")
             for i in range(450)]  # beyond the context and more than one scan chunk

    async def scenario(store: TimelineStore) -> list[str | None]:
        await store.add(chats)
        return await _rated(store, "C-6", "k0", "k9", "k449", "k450")

    assert _run(stack, scenario) == ["e0", "e9", "e449", None]


def test_trimmed_and_erased_entries_leave_no_channel_id_behind(stack) -> None:
    now = int(time.time() * 1000)

    async def scenario(store: TimelineStore) -> tuple:
        await store.add([_contact("C-3", f"e{i}", now - (10 - i) * 1000, "chat.ended",
                                  chat_id=f"k{i}") for i in range(3)])
        await store.add([_contact("C-3", "e-old", now - 40 * DAY_MS, "call.ended",
                                  call_id="k-old")])  # older than the retention
        # A newer entry with k0 names it when the older one is trimmed.
        await store.add([_contact("C-3", "e3", now, "call.ended", call_id="k0")])
        trimmed = await _rated(store, "C-3", "k0", "k1", "k2", "k-old", "e0", "e-old")
        await store.erase("C-3")
        await AlertStore(store.redis, store.keys, counters_ttl_days=1).erase_customer("C-3")
        erased = await _rated(store, "C-3", "k0", "k1")
        keys = [k async for k in store.redis.scan_iter(f"{store.keys.prefix}:{{C-3}}*")]
        return trimmed, erased, keys

    trimmed, erased, keys = _run(stack, scenario, max_entries=3, max_age_days=30)
    assert trimmed == ["e3", "e1", "e2", None, None, None]
    assert erased == [None, None]
    assert keys == []
