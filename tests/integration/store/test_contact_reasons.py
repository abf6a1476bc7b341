"""Contact-reason counters (store.contact_reasons) on a real Redis: each contact once under
repeats and redelivery, in its hour, negative once it turns negative, alerts once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from redis.asyncio import Redis

from cxt.localstack import LocalStack
from domain.contact_reasons import ContactCount, ContactRow
from domain.survey_metrics import hour_of
from store.contact_reasons import ContactReasonStore
from store.keys import Keys
from usecases.report import contact_rows_from

T = TypeVar("T")
HOUR_MS = 3_600_000
# 10:00 UTC on a fixed day, so the neighbouring hours are on the same day.
T0 = int(datetime(2026, 11, 22, 10, tzinfo=UTC).timestamp() * 1000)
NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)


def _run(stack: LocalStack, scenario: Callable[[ContactReasonStore], Awaitable[T]]) -> T:
    async def main() -> T:
        redis = Redis.from_url(stack.settings.redis_url)
        store = ContactReasonStore(redis, Keys(f"k{uuid.uuid4().hex[:6]}"), ttl_days=30)
        try:
            return await scenario(store)
        finally:
            await redis.aclose()

    return asyncio.run(main())


def _c(contact: str, ms: int, *, channel: str = "call", queue: str | None = "billing-uk",
       intent: str | None = "billing", repeat: bool = False,
       negative: bool = False) -> ContactCount:
    return ContactCount(contact, ms, channel, queue, intent, repeat, negative)


async def _rows(store: ContactReasonStore, **filters: str) -> list[ContactRow]:
    return await contact_rows_from(store, hours=4, now=NOW, **filters)


def test_started_ended_and_redelivered_events_count_one_contact(stack: LocalStack) -> None:
    async def scenario(store: ContactReasonStore) -> list[ContactRow]:
        started, ended = _c("call:1", T0 + 60_000), _c("call:1", T0 + 360_000, repeat=True)
        await store.count([started, ended, _c("chat:9", T0 + 1000, channel="chat")])
        await store.count([started, ended])  # the batch redelivered
        return await _rows(store)

    rows = _run(stack, scenario)
    assert [r.period for r in rows] == ["2026-11-22 09:00", "2026-11-22 10:00",
                                        "2026-11-22 11:00", "2026-11-22 12:00"]
    ten = rows[1]
    assert (ten.contacts, ten.repeat, ten.negative) == (2, 1, 0)
    assert sum(r.contacts for r in rows) == 2


def test_a_contact_turning_negative_is_counted_negative_once(stack: LocalStack) -> None:
    async def scenario(store: ContactReasonStore) -> list[ContactRow]:
        await store.count([_c("chat:1", T0 + 1000, channel="chat")])
        await store.count([_c("chat:1", T0 + 2000, channel="chat", negative=True),
                           _c("chat:1", T0 + 3000, channel="chat", negative=True)])
        await store.count([_c("chat:1", T0 + 4000, channel="chat", negative=True)])
        return await _rows(store)

    ten = _run(stack, scenario)[1]
    assert (ten.contacts, ten.negative, ten.negative_share) == (1, 1, 1.0)


def test_each_contact_counts_in_its_hour_and_once_across_the_hour(
        stack: LocalStack) -> None:
    async def scenario(store: ContactReasonStore) -> list[ContactRow]:
        # Started at 10:59, ended at 11:04 (negative): one contact, in 10:00.
        await store.count([_c("call:edge", T0 + HOUR_MS - 60_000),
                           _c("call:late", T0 + 2 * HOUR_MS + 5)])
        await store.count([_c("call:edge", T0 + HOUR_MS + 240_000, negative=True)])
        # The ended event arriving first: counted in 11:00, the started one adds nothing.
        await store.count([_c("call:rev", T0 + HOUR_MS + 120_000, intent="technical")])
        await store.count([_c("call:rev", T0 + HOUR_MS - 120_000, intent="technical")])
        return await _rows(store)

    rows = _run(stack, scenario)
    assert [(r.contacts, r.negative) for r in rows] == [(0, 0), (1, 1), (1, 0), (1, 0)]
    assert rows[2].by_intent[0].intent == "technical"


def test_filters_and_the_dimensions_of_the_first_count(stack: LocalStack) -> None:
    async def scenario(store: ContactReasonStore) -> dict[str, list[ContactRow]]:
        await store.count([
            _c("call:1", T0, repeat=True, negative=True),
            _c("call:2", T0, queue="tech-uk", intent=" Technical "),
            _c("email:t1", T0, channel="email", queue=None, intent=None, negative=True),
            _c("social:p1", T0, channel="social", queue="a|b", intent="billing"),
        ])
        # A later event of call:2 naming another intent does not move it.
        await store.count([_c("call:2", T0 + 5, intent="billing", negative=True)])
        return {name: await _rows(store, **filters) for name, filters in {
            "all": {}, "call": {"channel": "call"}, "tech": {"queue": "tech-uk"},
            "billing": {"intent": "BILLING"}, "no-queue": {"queue": "-"},
            "piped": {"queue": "a|b"}}.items()}

    found = _run(stack, scenario)
    everything = found["all"][1]
    assert (everything.contacts, everything.repeat, everything.negative) == (4, 1, 3)
    assert [(r.intent, r.contacts, r.negative) for r in everything.by_intent] == [
        ("billing", 2, 1), ("-", 1, 1), ("technical", 1, 1)]
    assert found["call"][1].contacts == 2
    assert found["tech"][1].by_intent[0].intent == "technical"
    assert found["billing"][1].contacts == 2
    assert found["no-queue"][1].by_intent[0].intent == "-"
    assert found["piped"][1].contacts == 1


def test_alerts_count_once_in_the_hour_raised_and_days_add_up(stack: LocalStack) -> None:
    async def scenario(store: ContactReasonStore) -> tuple[list[ContactRow], list[ContactRow]]:
        await store.count_alerts([("AL-1", T0 + 10), ("AL-2", T0 + HOUR_MS + 10)])
        await store.count_alerts([("AL-1", T0 + 10)])
        await store.count([_c("call:1", T0), _c("call:2", T0 + HOUR_MS)])
        by_day = await contact_rows_from(store, days=2, now=NOW)
        return await _rows(store), by_day

    hours, days = _run(stack, scenario)
    assert [r.negative_alerts for r in hours] == [0, 1, 1, 0]
    assert [(r.period, r.contacts, r.negative_alerts) for r in days] == [
        ("2026-11-21", 0, 0), ("2026-11-22", 2, 2)]


def test_one_script_call_per_hour_keys_share_a_slot(stack: LocalStack) -> None:
    from redis.crc import key_slot

    keys = Keys("x")
    hour = hour_of(T0)
    assert key_slot(keys.contact_counters(hour).encode()) == \
        key_slot(keys.contact_counted(hour).encode()) == \
        key_slot(keys.contact_counted(hour_of(T0 + HOUR_MS)).encode())

    async def scenario(store: ContactReasonStore) -> int:
        await store.count([_c(f"call:{i}", T0 + i) for i in range(500)]
                          + [_c(f"chat:{i}", T0 + HOUR_MS + i) for i in range(5)])
        return sum(r.contacts for r in await _rows(store))

    assert _run(stack, scenario) == 505
