"""Test helpers: isolated settings and their environment, Kafka produce/read calls,
`eventually`, test envelopes, and `REPO` (the repository root, for paths to its files).

The cxt processes are in tests.support.processes."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from kernel.kafka import security_options
from kernel.settings import TOPIC_NAMES, Settings, Topics
from kernel.topics import ensure_topics

REPO = Path(__file__).resolve().parents[2]  # tests/support/helpers.py


def isolated(settings: Settings, **changes: object) -> Settings:
    """Settings with their own topics, consumer group and Redis prefix.

    Tests share one broker and one Redis; a namespace per test keeps their
    data apart without restarting the services.
    """
    tag = uuid.uuid4().hex[:8]
    names = {n: f"{getattr(Topics, n)}.{tag}" for n in TOPIC_NAMES}
    topics = Topics(**names, partitions=3)
    changes.setdefault("worker_metrics_port", 0)
    changes.setdefault("webhooks_metrics_port", 0)
    return replace(settings, topics=topics, app_id=f"cxt-test-{tag}",
                   redis_prefix=f"t{tag}", batch_window_ms=20, **changes)  # type: ignore[arg-type]


def settings_env(settings: Settings) -> dict[str, str]:
    """This process's environment with every setting of `settings` (`Settings.to_env`).

    Tests give workers metrics ports and API tokens through `settings`; an inherited
    CXT_API_TOKENS_FILE is emptied, since `settings.api_tokens` already holds its tokens.
    """
    return {**os.environ, **settings.to_env(), "PYTHONUNBUFFERED": "1"}


async def create_topics(settings: Settings) -> None:
    await ensure_topics(settings)


async def produce(settings: Settings, topic: str,
                  messages: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    """Send (key, value) pairs and wait until Kafka has acknowledged all of them."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                acks="all", linger_ms=5, **security_options(settings))
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_events(settings: Settings, events: Iterable[dict]) -> None:
    """Send envelopes, each to its channel's topic, keyed by customer_id."""
    by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
    for event in events:
        topic = settings.topics.for_channel(event["type"].split(".")[0])
        key = event.get("customer_id", "").encode() or None
        by_topic.setdefault(topic, []).append((key, orjson.dumps(event)))
    for topic, messages in by_topic.items():
        await produce(settings, topic, messages)


async def read_topic(settings: Settings, topic: str, *, until: Callable[[list], bool],
                     timeout: float = 30) -> list:
    """Every message of `topic` from the beginning, until `until(messages)` or the timeout.

    Returns the aiokafka records (`.key`, `.value`, `.timestamp`, ...).
    """
    # No group: the consumer is assigned every partition and starts at the beginning.
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", **security_options(settings))
    await consumer.start()
    try:
        seen: list = []
        deadline = time.monotonic() + timeout
        while not until(seen) and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                seen.extend(records)
        return seen
    finally:
        await consumer.stop()


async def alerts_through_a_marker(settings: Settings, customer_id: str) -> list[dict]:
    """The alert events published (tombstones left out) until the alert of a new
    bottom-2-box survey of `customer_id`, which this sends.

    The survey follows the customer's earlier events on their partition, so once its
    alert is out those have all been processed: a test can see that an alert (or an
    update) never came without waiting out a timeout.
    """
    marker = envelope("survey", customer_id, score=1)
    await produce_events(settings, [marker])

    def alerts(records: list) -> list[dict]:
        return [orjson.loads(r.value) for r in records if r.value is not None]

    def marked(records: list) -> bool:
        return any(a["survey_event_id"] == marker["event_id"] for a in alerts(records))

    records = await read_topic(settings, settings.topics.alerts, until=marked)
    assert marked(records), f"the marker survey {marker['event_id']} raised no alert"
    return [a for a in alerts(records) if a["survey_event_id"] != marker["event_id"]]


async def eventually(check: Callable[[], object], *, timeout: float = 30,
                     interval: float = 0.1) -> object:
    """Poll an async or sync `check` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


def envelope(channel: str, customer_id: str | None = None, *, event_id: str | None = None,
             occurred_at: str = "2026-11-22T10:00:00Z", event_type: str | None = None,
             identity: dict | None = None, **payload: object) -> dict:
    """A valid interaction envelope for tests."""
    default_types = {"call": "call.started", "chat": "chat.started", "email": "email.received",
                     "survey": "survey.response", "social": "social.post"}
    event: dict = {
        "event_id": event_id or uuid.uuid4().hex,
        "type": event_type or default_types[channel],
        "occurred_at": occurred_at,
        "payload": dict(payload),
    }
    if customer_id is not None:
        event["customer_id"] = customer_id
    if identity is not None:
        event["identity"] = identity
    if channel == "survey":
        event["payload"].setdefault("score", 4)
    return event


def b2b_survey(cid: str | None, comment: str, **fields: object) -> dict:
    """A bottom-2-box B2B survey response (score 1 of 5) occurring now, which raises an alert."""
    now = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return envelope("survey", cid, occurred_at=now, survey_id=f"S-{uuid.uuid4().hex[:8]}",
                    score=1, queue="billing-uk", agent_id="A-007", comment=comment,
                    reason_codes=["agent_attitude"], **fields)  # type: ignore[arg-type]
