"""Slow suite: a worker killed again and again while traffic flows.

Runs with `./dev test-slow` (and in CI). Traffic includes bad records and
identity-only events; after the last restart, every good event must be in
exactly one timeline exactly once, every bad one on the dead-letter topic,
every good one published on cx.timeline.v1 at least once, and every
bottom-2-box survey has exactly one alert.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter

import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from cxt.settings import Settings
from cxt.traffic import TrafficGenerator, is_bottom_two_box, make_customers
from streams.alerts import alert_id_for
from tests.helpers import WorkerProcess, create_topics, isolated, produce, read_topic

pytestmark = pytest.mark.slow

KILLS = 6
CHUNKS = 60
CHUNK_EVENTS = 250
BAD_EVERY = 50  # one bad record per this many good ones


def _traffic(settings: Settings, customers: list[dict]
             ) -> tuple[list[tuple[str, bytes, bytes]], set, set, set]:
    """(topic, key, value) messages, the good event ids, the bad keys, the alert ids due."""
    traffic = TrafficGenerator(customers, seed=23, unknown_share=0.0)
    messages, good, bad, alerts = [], set(), set(), set()
    for i in range(CHUNKS * CHUNK_EVENTS):
        channel, event = traffic.next_event()
        topic = settings.topics.for_channel(channel)
        messages.append((topic, (event.get("customer_id") or "").encode(), orjson.dumps(event)))
        good.add(event["event_id"])
        if channel == "survey" and is_bottom_two_box(event["payload"]):
            alerts.add(alert_id_for(event["event_id"]))
        if i % BAD_EVERY == 0:
            key = f"bad-{i}".encode()
            messages.append((topic, key, b'{"event_id": "broken", '))
            bad.add(key)
    return messages, good, bad, alerts


def _send_in_chunks(settings: Settings, messages: list, done: threading.Event) -> None:
    step = len(messages) // CHUNKS + 1
    for start in range(0, len(messages), step):
        chunk = messages[start:start + step]
        by_topic: dict[str, list] = {}
        for topic, key, value in chunk:
            by_topic.setdefault(topic, []).append((key or None, value))
        for topic, pairs in by_topic.items():
            asyncio.run(produce(settings, topic, pairs))
        time.sleep(0.25)
    done.set()


def _stored(client: redis.Redis, prefix: str) -> Counter[str]:
    ids: Counter[str] = Counter()
    for key in client.scan_iter(f"{prefix}:*:tl", count=1000):
        ids.update(m.decode() for m in client.zrange(key, 0, -1))
    return ids


def test_repeated_sigkill_under_traffic_loses_and_doubles_nothing(stack: LocalStack,
                                                                  tmp_path) -> None:
    settings = isolated(stack.settings, batch_size=300)
    asyncio.run(create_topics(settings))
    customers = make_customers(300, seed=23)
    asyncio.run(produce(settings, settings.topics.customers,
                        [(c["customer_id"].encode(), orjson.dumps(c)) for c in customers]))
    messages, good, bad, alert_ids = _traffic(settings, customers)

    done = threading.Event()
    sender = threading.Thread(target=_send_in_chunks, args=(settings, messages, done))
    client = redis.Redis.from_url(settings.redis_url)
    rng = random.Random(5)
    worker = WorkerProcess(settings, tmp_path).start()
    sender.start()
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(1.5, 4.0))
            worker.assert_alive()
            worker.kill()
            worker = WorkerProcess(settings, tmp_path).start()
        sender.join()
        deadline = time.monotonic() + 180
        while set(_stored(client, settings.redis_prefix)) != good:
            assert time.monotonic() < deadline, worker.log()
            worker.assert_alive()
            time.sleep(0.5)
        time.sleep(3)  # late redeliveries would show up as doubles now

        stored = _stored(client, settings.redis_prefix)
        assert set(stored) == good
        assert max(stored.values()) == 1

        letters = asyncio.run(read_topic(settings, settings.topics.deadletter,
                                         until=lambda ms: {m.key for m in ms} >= bad, timeout=60))
        assert {m.key for m in letters} >= bad
        assert {orjson.loads(m.value)["reason"] for m in letters} == {"invalid_json"}

        published = asyncio.run(read_topic(
            settings, settings.topics.timeline,
            until=lambda ms: {orjson.loads(m.value)["event_id"] for m in ms} >= good,
            timeout=60))
        assert {orjson.loads(m.value)["event_id"] for m in published} >= good

        # One alert per bottom-2-box survey, stored once, raised on the topic.
        listed: Counter[str] = Counter()
        for key in client.scan_iter(f"{settings.redis_prefix}:*:alerts", count=1000):
            listed.update(a.decode() for a in client.smembers(key))
        stored = {k.decode().split("{")[1].split("}")[0] for k in
                  client.scan_iter(f"{settings.redis_prefix}:*:alert", count=1000)}
        assert stored == alert_ids
        assert set(listed) == alert_ids
        raised = asyncio.run(read_topic(
            settings, settings.topics.alerts, timeout=60,
            until=lambda ms: {orjson.loads(m.value)["alert_id"] for m in ms} >= alert_ids))
        assert {orjson.loads(m.value)["alert_id"] for m in raised
                if orjson.loads(m.value)["event"] == "raised"} == alert_ids
    finally:
        worker.stop()
        client.close()
