"""Contact-reason counters on a real Redis, counted by the contact memory
(store.negatives) and read by store.contact_reasons: each contact once under repeats and
redelivery, in its hour, a repeat when it is the second about its intent, negative once
it turns negative, alerts once; and on a Redis Cluster alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from redis.asyncio import Redis

from cxt.localstack import LocalStack
from domain.contact_reasons import ContactRow
from store.contact_reasons import ContactReasonStore
from store.keys import Keys
from store.negatives import NegativeStore
from tests.support.contacts import RULES, count_contacts, fact
from usecases.report import contact_rows_from

T = TypeVar("T")
HOUR_MS = 3_600_000
# 10:00 UTC on a fixed day.
T0 = int(datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)

Stores = tuple[NegativeStore, ContactReasonStore]


def _run(stack: LocalStack, scenario: Callable[[Stores], Awaitable[T]]) -> T:
    async def main() -> T:
        redis = Redis.from_url(stack.settings.redis_url)
        keys = Keys(f"k{uuid.uuid4().hex[:6]}")
        try:
            return await scenario((NegativeStore(redis, keys, counters_ttl_days=30),
                                   ContactReasonStore(redis, keys, ttl_days=30)))
        finally:
            await redis.aclose()

    return asyncio.run(main())


async def _rows(store: ContactReasonStore, **filters: str) -> list[ContactRow]:
    return await contact_rows_from(store, hours=4, now=NOW, **filters)


def test_started_ended_and_redelivered_events_count_one_contact(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> list[ContactRow]:
        negatives, reasons = stores
        batch = [fact("C-1", "call:1", T0 + 60_000), fact("C-1", "call:1", T0 + 360_000),
                 fact("C-1", "chat:9", T0 + 1000, intent="technical")]
        await count_contacts(negatives, batch)
        await count_contacts(negatives, batch)  # the batch redelivered
        return await _rows(reasons)

    rows = _run(stack, scenario)
    assert [r.period for r in rows] == ["2026-11-22 09:00", "2026-11-22 10:00",
                                        "2026-11-22 11:00", "2026-11-22 12:00"]
    ten = rows[1]
    assert (ten.contacts, ten.repeat, ten.negative) == (2, 0, 0)
    assert sum(r.contacts for r in rows) == 2


def test_the_second_contact_about_an_intent_is_a_repeat(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> list[ContactRow]:
        negatives, reasons = stores
        await count_contacts(negatives, [fact("C-1", "call:1", T0), fact("C-1", "chat:2", T0 + 5),
                                         fact("C-2", "call:3", T0 + 9)])
        # The third about billing is a repeat-contact signal, so negative too.
        await count_contacts(negatives, [fact("C-1", "email:4", T0 + 60_000)])
        return await _rows(reasons)

    ten = _run(stack, scenario)[1]
    assert (ten.contacts, ten.repeat, ten.negative) == (4, 2, 1)


def test_a_contact_turning_negative_is_counted_negative_once(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> list[ContactRow]:
        negatives, reasons = stores
        await count_contacts(negatives, [fact("C-1", "chat:1", T0 + 1000)])
        await count_contacts(negatives, [fact("C-1", "chat:1", T0 + 2000, negative=True),
                                         fact("C-1", "chat:1", T0 + 3000, negative=True)])
        await count_contacts(negatives, [fact("C-1", "chat:1", T0 + 4000, negative=True)])
        return await _rows(reasons)

    ten = _run(stack, scenario)[1]
    assert (ten.contacts, ten.negative, ten.negative_share) == (1, 1, 1.0)


def test_each_contact_counts_in_the_hour_of_its_first_event(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> list[ContactRow]:
        negatives, reasons = stores
        # Started at 10:59, ended at 11:04 (negative): one contact, in 10:00.
        await count_contacts(negatives, [fact("C-1", "call:edge", T0 + HOUR_MS - 60_000),
                                         fact("C-2", "call:late", T0 + 2 * HOUR_MS + 5)])
        await count_contacts(negatives, [fact("C-1", "call:edge", T0 + HOUR_MS + 240_000,
                                              negative=True)])
        # The ended event arriving first: counted in 11:00, the started one adds nothing.
        await count_contacts(negatives, [fact("C-3", "call:rev", T0 + HOUR_MS + 120_000,
                                              intent="technical")])
        await count_contacts(negatives, [fact("C-3", "call:rev", T0 + HOUR_MS - 120_000,
                                              intent="technical")])
        return await _rows(reasons)

    rows = _run(stack, scenario)
    assert [(r.contacts, r.negative) for r in rows] == [(0, 0), (1, 1), (1, 0), (1, 0)]
    assert rows[2].by_intent[0].intent == "technical"


def test_filters_and_the_dimensions_of_the_first_count(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> dict[str, list[ContactRow]]:
        negatives, reasons = stores
        await count_contacts(negatives, [
            fact("C-1", "call:1", T0, negative=True),
            fact("C-2", "call:2", T0, queue="tech-uk", intent=" Technical "),
            fact("C-3", "email:t1", T0, queue=None, intent=None, negative=True),
            fact("C-4", "social:p1", T0, queue="a|b", intent="billing"),
        ])
        # A later event of call:2 naming another intent does not move it.
        await count_contacts(negatives, [fact("C-2", "call:2", T0 + 5, intent="billing",
                                              negative=True)])
        return {name: await _rows(reasons, **filters) for name, filters in {
            "all": {}, "call": {"channel": "call"}, "tech": {"queue": "tech-uk"},
            "billing": {"intent": "BILLING"}, "no-queue": {"queue": "-"},
            "piped": {"queue": "a|b"}}.items()}

    found = _run(stack, scenario)
    everything = found["all"][1]
    assert (everything.contacts, everything.repeat, everything.negative) == (4, 0, 3)
    assert [(r.intent, r.contacts, r.negative) for r in everything.by_intent] == [
        ("billing", 2, 1), ("-", 1, 1), ("technical", 1, 1)]
    assert found["call"][1].contacts == 2
    assert found["tech"][1].by_intent[0].intent == "technical"
    assert found["billing"][1].contacts == 2
    assert found["no-queue"][1].by_intent[0].intent == "-"
    assert found["piped"][1].contacts == 1


def test_alerts_count_once_in_the_hour_raised_and_days_add_up(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> tuple[list[ContactRow], list[ContactRow]]:
        negatives, reasons = stores
        await reasons.count_alerts([("AL-1", T0 + 10), ("AL-2", T0 + HOUR_MS + 10)])
        await reasons.count_alerts([("AL-1", T0 + 10)])
        await count_contacts(negatives, [fact("C-1", "call:1", T0),
                                         fact("C-2", "call:2", T0 + HOUR_MS)])
        by_day = await contact_rows_from(reasons, days=2, now=NOW)
        return await _rows(reasons), by_day

    hours, days = _run(stack, scenario)
    assert [r.negative_alerts for r in hours] == [0, 1, 1, 0]
    assert [(r.period, r.contacts, r.negative_alerts) for r in days] == [
        ("2026-11-21", 0, 0), ("2026-11-22", 2, 2)]


def test_many_customers_in_one_call_across_hours(stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> tuple[int, int]:
        negatives, reasons = stores
        await count_contacts(negatives,
                             [fact(f"C-{i % 300}", f"call:{i}", T0 + i) for i in range(1500)]
                             + [fact(f"C-{i}", f"chat:{i}", T0 + HOUR_MS + i) for i in range(5)])
        rows = await _rows(reasons)
        return sum(r.contacts for r in rows), sum(r.repeat for r in rows)

    # Five calls per customer about billing, the second to the fifth repeats; the chats
    # of C-0..C-4 are their sixth.
    assert _run(stack, scenario) == (1505, 1205)


def test_a_customers_counted_contacts_are_forgotten_after_the_windows(
        stack: LocalStack) -> None:
    async def scenario(stores: Stores) -> tuple[int, int]:
        negatives, _ = stores
        old = [fact("C-1", f"call:{i}", T0 + i, abandoned=i % 2 == 0) for i in range(300)]
        await count_contacts(negatives, old)
        redis, key = negatives.redis, negatives.keys.contacts("C-1")
        before = await redis.hlen(key)
        later = T0 + 30 * 86_400_000  # past twice the repeat window
        await count_contacts(negatives, [fact("C-1", "call:new", later)])
        return before, await redis.hlen(key)

    # 300 contacts and 150 abandoned calls, of which the newest 100 and 20 are kept; then
    # only the new contact.
    assert _run(stack, scenario) == (100 + 20, 1)


def test_a_customer_who_contacts_us_all_the_time_is_remembered_up_to_a_bound(
        stack: LocalStack) -> None:
    from store.negatives import MAX_CONTACTS

    async def scenario(stores: Stores) -> tuple[int, int, int]:
        negatives, reasons = stores
        calls = [fact("C-1", f"call:{i}", T0 + i * 1000) for i in range(MAX_CONTACTS + 30)]
        for start in range(0, len(calls), 40):  # batch after batch
            await count_contacts(negatives, calls[start:start + 40])
        kept = await negatives.redis.hlen(negatives.keys.contacts("C-1"))
        # The newest contact's second event is still known: not counted again.
        await count_contacts(negatives, [calls[-1]])
        seen = await negatives.see_contacts([fact("C-1", "call:last", T0 + 10**6)],
                                            RULES)
        return kept, sum(r.contacts for r in await _rows(reasons)), seen[0].same_intent

    kept, contacts, same_intent = _run(stack, scenario)
    # 130 in batches of 40: over 125 after the fourth, trimmed back to 100.
    assert kept == MAX_CONTACTS
    assert contacts == MAX_CONTACTS + 31
    assert same_intent == MAX_CONTACTS + 1  # the remembered ones, and itself
