"""The one-open-alert rule against redelivery and concurrent workers, on the real Redis,
batches fed to the worker's pipeline by hand (the Kafka path is in
test_negative_interactions.py, the kill in test_worker_crash.py)."""

from __future__ import annotations

import asyncio
import uuid

import orjson
from redis.asyncio import Redis as AsyncRedis

from cxt.localstack import LocalStack
from domain.rules import DEFAULT_RULES_PATH, load_rules
from kernel.settings import Settings
from store.alerts import AlertStore
from store.keys import Keys
from store.timeline import TimelineStore
from streams.processor import Processor
from streams.records import Record
from tests.support.helpers import envelope, isolated

ANGRY = "Your service is useless and I am furious, nothing ever works."


def _processor(settings: Settings, client: AsyncRedis) -> Processor:
    keys = Keys(settings.redis_prefix)
    return Processor(settings, TimelineStore(client, keys, max_entries=100, max_age_days=400),
                     AlertStore(client, keys, counters_ttl_days=400),
                     load_rules(DEFAULT_RULES_PATH))


def _chat(settings: Settings, cid: str, offset: int, intent: str = "billing") -> Record:
    event = envelope("chat", cid, event_type="chat.ended", chat_id=f"CH-{offset}",
                     intent=intent, messages=[{"from": "customer", "text": ANGRY}])
    return Record(settings.topics.chat, 0, offset, cid.encode(), orjson.dumps(event))


def _alerts(out: list, settings: Settings) -> list[dict]:
    return [orjson.loads(m.value) for m in out if m.topic == settings.topics.alerts]


def test_a_redelivered_batch_republishes_and_changes_nothing(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = f"C-{uuid.uuid4().hex[:8]}"
    batch = [_chat(settings, cid, 1), _chat(settings, cid, 2)]

    async def main() -> tuple[list[dict], list[dict], list[dict]]:
        client = AsyncRedis.from_url(settings.redis_url)
        try:
            first = _alerts(await _processor(settings, client).interactions(batch), settings)
            # A new worker after a crash before the commit: the same records again.
            again = _alerts(await _processor(settings, client).interactions(batch), settings)
            stored = await _processor(settings, client).alerts.of_customer(cid)
        finally:
            await client.aclose()
        return first, again, list(stored)

    first, again, stored = asyncio.run(main())
    assert [(a["event"], a["version"], len(a["signals"])) for a in first] == [("raised", 1, 2)]
    assert again == first  # published again as it is: the publish may not have happened
    assert stored == first


def test_concurrent_workers_share_one_open_alert(stack: LocalStack) -> None:
    """Ten workers, each with one negative chat for the same customer and intent, at once:
    one alert holding all their signals, every version published once, none lost."""
    settings = isolated(stack.settings)
    cid = f"C-{uuid.uuid4().hex[:8]}"

    async def main() -> tuple[list[dict], list[dict]]:
        client = AsyncRedis.from_url(settings.redis_url, max_connections=50)
        try:
            outs = await asyncio.gather(*(
                _processor(settings, client).interactions([_chat(settings, cid, n)])
                for n in range(10)))
            other = await _processor(settings, client).interactions(
                [_chat(settings, cid, 99, intent="technical")])
            stored = await _processor(settings, client).alerts.of_customer(cid)
        finally:
            await client.aclose()
        return [a for out in outs for a in _alerts(out, settings)] + _alerts(other, settings), \
            list(stored)

    published, stored = asyncio.run(main())
    by_intent = {a["intent"]: a for a in stored}
    assert len(stored) == 2 and set(by_intent) == {"billing", "technical"}
    billing = by_intent["billing"]
    rules = [s["rule"] for s in billing["signals"]]
    assert rules.count("negative_sentiment") == 10 and billing["version"] == 10
    # The contacts were counted atomically: the 3rd to the 10th each saw the ones before.
    assert sorted(s["count"] for s in billing["signals"] if s["rule"] == "repeat_contact") == \
        list(range(3, 11))
    versions = sorted(a["version"] for a in published if a["alert_id"] == billing["alert_id"])
    assert versions == list(range(1, 11))


def test_erasure_takes_the_contacts_and_open_alerts(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    cid = f"C-{uuid.uuid4().hex[:8]}"
    call = envelope("call", cid, event_type="call.ended", call_id="K-1", intent="billing",
                    outcome="abandoned")
    records = [_chat(settings, cid, 1), Record(settings.topics.call, 0, 2, None,
                                               orjson.dumps(call))]
    keys = Keys(settings.redis_prefix)

    async def main() -> tuple[set[str], set[str]]:
        client = AsyncRedis.from_url(settings.redis_url)
        processor = _processor(settings, client)
        try:
            await processor.interactions(records)
            mine = f"{settings.redis_prefix}:*{cid}*"
            before = {k.decode() async for k in client.scan_iter(mine)}
            await processor.customers([Record(settings.topics.customers, 0, 3, cid.encode(),
                                              None)])
            after = {k.decode() async for k in client.scan_iter(mine)}
        finally:
            await client.aclose()
        return before, after

    before, after = asyncio.run(main())
    assert {keys.contacts(cid), keys.open_negative(cid)} <= before
    assert after == set()
