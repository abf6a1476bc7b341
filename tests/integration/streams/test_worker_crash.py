"""A worker killed (SIGKILL) in the middle of a stream loses and doubles nothing."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from cxt.traffic import TrafficGenerator, make_customers
from tests.support.faults import assert_one_open_negative_alert_per_intent
from tests.support.helpers import create_topics, isolated, produce
from tests.support.processes import WorkerProcess

EVENTS = 20000


def _events() -> list[dict]:
    customers = make_customers(200, seed=11)
    traffic = TrafficGenerator(customers, seed=11, unknown_share=0.0, phone_only_share=0.0)
    events = [traffic.next_event()[1] for _ in range(EVENTS)]
    # Every event names its customer, so the expected timeline of each is known up front.
    return [e for e in events if e.get("customer_id")]


def _stored_ids(client: redis.Redis, prefix: str) -> Counter[str]:
    ids: Counter[str] = Counter()
    for key in client.scan_iter(f"{prefix}:*:tl", count=1000):
        ids.update(m.decode() for m in client.zrange(key, 0, -1))
    return ids


def _stored_count(client: redis.Redis, prefix: str) -> int:
    """Entries stored, one pipeline of ZCARDs: cheap enough to poll while the worker runs."""
    pipe = client.pipeline(transaction=False)
    for key in client.scan_iter(f"{prefix}:*:tl", count=1000):
        pipe.zcard(key)
    return sum(pipe.execute())


def _wait_until_settled(client: redis.Redis, prefix: str, expected: int,
                        worker: WorkerProcess, quiet_s: float = 40) -> None:
    """Until every event is stored, or nothing changed for `quiet_s` (a loss).

    `quiet_s` exceeds the session timeout: a restarted worker gets its
    partitions only once the group has noticed that the killed one is gone.
    """
    last, changed = -1, time.monotonic()
    while time.monotonic() - changed < quiet_s:
        worker.assert_alive()
        count = sum(_stored_ids(client, prefix).values())
        if count != last:
            last, changed = count, time.monotonic()
        if count >= expected:
            time.sleep(2)  # let redelivered batches land, to catch any doubling
            return
        time.sleep(0.2)


def test_sigkill_mid_stream_then_restart_keeps_every_event_exactly_once(
        stack: LocalStack, tmp_path) -> None:
    # The broker's least session timeout (CXT_SESSION_TIMEOUT_S, 6 s), not the default 10 s:
    # each restarted worker waits that long for the group to drop the killed one, five times.
    settings = isolated(stack.settings, batch_size=200, session_timeout_s=6)
    asyncio.run(create_topics(settings))
    events = _events()
    by_topic: dict[str, list] = {}
    for e in events:
        topic = settings.topics.for_channel(e["type"].split(".")[0])
        by_topic.setdefault(topic, []).append((e["customer_id"].encode(), orjson.dumps(e)))
    for topic, messages in by_topic.items():
        asyncio.run(produce(settings, topic, messages))

    client = redis.Redis.from_url(settings.redis_url)
    worker = WorkerProcess(settings, tmp_path).start()
    # Kill at several points: each kill lands at a random moment of a batch
    # (stored but not committed, committed, in flight ...).
    rng = random.Random(3)
    mid_stream = 0
    for share in (0.1, 0.25, 0.4, 0.55, 0.7):
        deadline = time.monotonic() + 90
        while _stored_count(client, settings.redis_prefix) < len(events) * share:
            assert time.monotonic() < deadline, worker.log()
            worker.assert_alive()
            time.sleep(0.02)
        # A random delay, so the kill does not always land just after a write.
        time.sleep(rng.uniform(0, 0.3))
        worker.kill()
        # A fast worker may finish the stream before a late kill lands; that kill
        # proves nothing, so count those that did land mid-stream.
        mid_stream += _stored_count(client, settings.redis_prefix) < len(events)
        worker = WorkerProcess(settings, tmp_path).start()
    if mid_stream < 3:
        pytest.fail(f"only {mid_stream} of 5 kills landed mid-stream; raise EVENTS")

    restarted = worker
    try:
        _wait_until_settled(client, settings.redis_prefix, len(events), restarted)
        stored = _stored_ids(client, settings.redis_prefix)
        assert sorted(stored) == sorted(e["event_id"] for e in events)
        assert set(stored.values()) == {1}
        for e in events[:50]:
            key = f"{settings.redis_prefix}:{{{e['customer_id']}}}:ev"
            assert orjson.loads(client.hget(key, e["event_id"]))["event_id"] == e["event_id"]
        assert_one_open_negative_alert_per_intent(client, settings.redis_prefix,
                                                  expect_some=True)
    finally:
        restarted.stop()
        client.close()

