"""Steady traffic and exactly-once checks for the fault, scale-out and soak tests: a
`SteadySender` thread, `GroupOffsets` (the worker group's lag), `assert_exactly_once`."""

from __future__ import annotations

import asyncio
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import orjson
import redis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from cxt.traffic import TrafficGenerator, is_bottom_two_box
from domain.alerts import alert_id_for
from kernel.settings import Settings
from tests.support.helpers import REPO

T = TypeVar("T")

ARTIFACTS = Path(os.environ.get("CXT_TEST_ARTIFACTS", REPO / "test-artifacts"))
BAD_SHARE = 0.02
RECOVERY_TIMEOUT_S = 150  # a restarted worker first waits out the dead one's session (10 s)

# (value, reason) of the bad records, in turn.
BAD_RECORDS = ((b'{"event_id": "broken", ', "invalid_json"),
               (b'{"event_id": "no-type", "customer_id": "C-000001", '
                b'"occurred_at": "2026-11-22T10:00:00Z", "payload": {}}', "schema_violation"))


def occurred_ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def identity_owners(customers: list[dict]) -> dict[str, str]:
    """identity key ("phone:+44...") -> customer_id, as the customer records claim them."""
    owners: dict[str, str] = {}
    for c in customers:
        ids = c["identifiers"]
        for phone in ids.get("phones", []):
            owners[f"phone:{phone}"] = c["customer_id"]
        for email in ids.get("emails", []):
            owners[f"email:{email}"] = c["customer_id"]
        for social in ids.get("social", []):
            owners[f"social:{social['network']}:{social['handle']}"] = c["customer_id"]
    return owners


def _identity_key(identity: dict) -> str:
    if "phone" in identity:
        return f"phone:{identity['phone']}"
    if "email" in identity:
        return f"email:{identity['email']}"
    social = identity["social"]
    return f"social:{social['network']}:{social['handle']}"


class SteadySender:
    """Sends traffic at `rate` events/s from its own thread until `stop()`.

    Each message is sent until Kafka acknowledges it (acks=all); a failure, as
    while the broker is down, sends it again (a repeated event_id is a duplicate
    the store ignores; a repeated bad record is dead-lettered once more).  Time
    lost that way is caught up afterwards, up to a second's worth per send.
    With `remember`, the acknowledged events are kept for the final checks.
    """

    def __init__(self, settings: Settings, customers: list[dict], *, rate: int, seed: int,
                 bad_share: float = BAD_SHARE, remember: bool = True) -> None:
        self.settings = settings
        self.rate = rate
        self.bad_share = bad_share
        self.remember = remember
        self.traffic = TrafficGenerator(customers, seed=seed, unknown_share=0.0)
        self.owners = identity_owners(customers)
        self.rng = random.Random(seed)
        self.good: dict[str, tuple[str, int]] = {}  # event_id -> (customer_id, occurred ms)
        self.bad: dict[bytes, str] = {}  # key -> expected dead-letter reason
        self.alert_ids: set[str] = set()
        self.sent = 0  # acknowledged messages, bad ones included
        self.resent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="steady-sender", daemon=True)

    def start(self) -> SteadySender:
        self._thread.start()
        return self

    def stop(self, timeout: float = 300) -> None:
        self._stop.set()
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the sender did not finish its last send"
        if self.error is not None:
            raise AssertionError(f"the sender failed: {self.error!r}") from self.error

    def assert_running(self) -> None:
        assert self._thread.is_alive(), f"the sender stopped: {self.error!r}"

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as exc:  # reported by stop() / assert_running()
            self.error = exc

    async def _run(self) -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
            request_timeout_ms=15000, retry_backoff_ms=250)
        await producer.start()
        try:
            started, generated = time.monotonic(), 0
            while not self._stop.is_set():
                due = int((time.monotonic() - started) * self.rate) - generated
                if due <= 0:
                    await asyncio.sleep(0.02)
                    continue
                due = min(due, self.rate)
                messages = [self._next() for _ in range(due)]
                generated += due
                await self._send(producer, [m for group in messages for m in group])
        finally:
            await producer.stop()

    def _next(self) -> list[tuple[str, bytes, bytes]]:
        channel, event = self.traffic.next_event()
        topic = self.settings.topics.for_channel(channel)
        cid = event.get("customer_id")
        out = [(topic, (cid or "").encode(), orjson.dumps(event))]
        if self.remember:
            owner = cid or self.owners[_identity_key(event["identity"])]
            self.good[event["event_id"]] = (owner, occurred_ms(event["occurred_at"]))
            if channel == "survey" and is_bottom_two_box(event["payload"]):
                self.alert_ids.add(alert_id_for(event["event_id"]))
        if self.rng.random() < self.bad_share:
            value, reason = BAD_RECORDS[len(self.bad) % len(BAD_RECORDS)]
            key = f"bad-{self.rng.getrandbits(64):016x}".encode()
            out.append((topic, key, value))
            if self.remember:
                self.bad[key] = reason
        return out

    async def _send(self, producer: AIOKafkaProducer,
                    messages: list[tuple[str, bytes, bytes]]) -> None:
        pending = messages
        while pending:
            futures: list[asyncio.Future | None] = []
            for topic, key, value in pending:
                try:
                    futures.append(await producer.send(topic, value, key=key or None))
                except Exception:  # e.g. no metadata while the broker is down
                    futures.append(None)
            results = await asyncio.gather(*(f for f in futures if f is not None),
                                           return_exceptions=True)
            outcome = iter(results)
            failed = [m for m, f in zip(pending, futures, strict=True)
                      if f is None or isinstance(next(outcome), BaseException)]
            self.sent += len(pending) - len(failed)
            if failed:
                self.resent += len(failed)
                await asyncio.sleep(0.5)
            pending = failed


class GroupOffsets:
    """Committed and end offsets of the inbound topics for the batch consumer's group."""

    def __init__(self, settings: Settings) -> None:
        self.bootstrap = settings.kafka_bootstrap_servers
        self.group = f"{settings.app_id}-interactions"
        self.partitions = [TopicPartition(topic, p) for topic in settings.topics.inbound.values()
                           for p in range(settings.topics.partitions)]

    async def _read(self) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=5000)
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                    request_timeout_ms=5000)
        try:
            await admin.start()
            listed = await admin.list_consumer_group_offsets(self.group)
            await consumer.start()
            ends = await consumer.end_offsets(self.partitions)
        finally:
            await consumer.stop()
            await admin.close()
        committed = {tp: max(0, listed[tp].offset) if tp in listed else 0
                     for tp in self.partitions}
        return committed, ends

    def read(self) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]] | None:
        """(committed, end offsets), or None while the broker does not answer."""
        try:
            return asyncio.run(asyncio.wait_for(self._read(), 20))
        except Exception:
            return None

    def lag(self) -> int | None:
        read = self.read()
        if read is None:
            return None
        committed, ends = read
        return sum(max(0, ends[tp] - committed[tp]) for tp in self.partitions)

    def wait_caught_up(self, since: float, timeout: float,
                       check: Callable[[], None] = lambda: None) -> float:
        """Seconds from `since` (monotonic) until the group has committed every record
        that was in the topics when this was called (read once the broker answers)."""
        target: dict[TopicPartition, int] | None = None
        read = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            check()
            read = self.read()
            if read is not None:
                committed, ends = read
                target = target or ends
                if all(committed[tp] >= target[tp] for tp in self.partitions):
                    return time.monotonic() - since
            time.sleep(0.25)
        raise AssertionError(f"group {self.group} did not catch up within {timeout} s "
                             f"(target {target}, last read {read})")


def timelines(client: redis.Redis, prefix: str) -> dict[str, list[tuple[str, int]]]:
    """customer_id -> [(event_id, score)] in timeline order."""
    out = {}
    for key in client.scan_iter(f"{prefix}:*:tl", count=1000):
        cid = key.decode()[len(prefix) + 2:-len("}:tl")]
        out[cid] = [(m.decode(), int(s)) for m, s in client.zrange(key, 0, -1, withscores=True)]
    return out


async def topic_values(settings: Settings, topic: str, keep: Callable[[bytes | None, dict], T],
                       until: Callable[[list[T]], bool], timeout: float = 120) -> list[T]:
    """`keep(key, parsed value)` of every message on `topic`, until `until(kept)` or the
    timeout (a projection: a whole topic's parsed messages would not fit in memory)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap_servers,
                                group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        kept: list[T] = []
        deadline = time.monotonic() + timeout
        while not until(kept) and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=500, max_records=5000)).values():
                kept.extend(keep(r.key, orjson.loads(r.value)) for r in records)
        return kept
    finally:
        await consumer.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str,
          check: Callable[[], None] = lambda: None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        check()
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(0.5)


def assert_exactly_once(settings: Settings, client: redis.Redis, sender: SteadySender
                        ) -> dict:
    """Once everything is committed: each good event exactly once in its customer's
    timeline at its occurred_at, in order, and published; each bad one dead-lettered
    with its reason; one alert per bottom-2-box survey.  The figures checked."""
    good, bad = sender.good, sender.bad
    stored = timelines(client, settings.redis_prefix)
    counts = Counter(eid for entries in stored.values() for eid, _ in entries)
    lost = set(good) - set(counts)
    doubled = {eid for eid, n in counts.items() if n > 1}
    assert not lost, f"{len(lost)} events lost, e.g. {sorted(lost)[:5]}"
    assert not doubled, f"{len(doubled)} events doubled, e.g. {sorted(doubled)[:5]}"
    assert set(counts) == set(good)
    misplaced = [(eid, cid, good[eid]) for cid, entries in stored.items()
                 for eid, score in entries if good[eid] != (cid, score)]
    assert not misplaced, f"wrong timeline or occurred_at: {misplaced[:5]}"
    for entries in stored.values():  # occurred_at order, oldest first
        assert [s for _, s in entries] == sorted(s for _, s in entries)

    letters = asyncio.run(topic_values(
        settings, settings.topics.deadletter, lambda k, v: (k, v["reason"]),
        until=lambda ms: {k for k, _ in ms} >= set(bad)))
    assert {k: reason for k, reason in letters if k in bad} == bad

    published = asyncio.run(topic_values(
        settings, settings.topics.timeline, lambda k, v: v["event_id"],
        until=lambda ids: len(set(ids)) >= len(good)))
    assert set(published) >= set(good)

    # One alert per bottom-2-box survey: one key in Redis, raised on the topic.  A
    # survey redelivered after a kill may publish its (same, version 1) alert again
    # (at least once on the output topics); it must be that very alert.
    # The traffic's negative-interaction alerts are checked by their own rule below.
    alert_ids = sender.alert_ids
    kinds = {a["alert_id"]: a["kind"] for a in stored_alerts(client, settings.redis_prefix)}
    in_redis = {i for i, kind in kinds.items() if kind == "bottom_2_box"}
    assert in_redis == alert_ids
    listed: Counter[str] = Counter()
    for key in client.scan_iter(f"{settings.redis_prefix}:*:alerts", count=1000):
        listed.update(a.decode() for a in client.smembers(key))
    assert set(listed) == set(kinds), (set(listed) ^ set(kinds), kinds)
    assert max(listed.values()) == 1
    assert_one_open_negative_alert_per_intent(client, settings.redis_prefix)
    events = asyncio.run(topic_values(
        settings, settings.topics.alerts,
        lambda k, v: (v["event"], v["alert_id"], v["version"], v["survey_event_id"],
                      v["raised_at"]),
        until=lambda es: {e[1] for e in es} >= alert_ids))
    events = [e for e in events if e[1] in alert_ids]
    raised: dict[str, set[tuple]] = {}
    for event in events:
        if event[0] == "raised":
            raised.setdefault(event[1], set()).add(event)
    assert set(raised) == alert_ids
    assert all(len(alerts) == 1 for alerts in raised.values())  # the same alert each time
    republished = sum(1 for e in events if e[0] == "raised") - len(raised)

    return {"events_checked": len(good), "bad_records_checked": len(bad),
            "alerts_checked": len(alert_ids), "alerts_republished": republished,
            "lost": len(lost), "doubled": len(doubled), "resent_by_sender": sender.resent}


def stored_alerts(client: redis.Redis, prefix: str) -> list[dict]:
    return [orjson.loads(client.get(k)) for k in client.scan_iter(f"{prefix}:*:alert",
                                                                   count=1000)]


def assert_one_open_negative_alert_per_intent(client: redis.Redis, prefix: str, *,
                                              expect_some: bool = False) -> None:
    """At most one negative-interaction alert per customer and intent (none is resolved
    in these runs), the one the customer's open-alert hash names, each signal (rule,
    contact) on it once: what kills, redeliveries and overlapping batches must keep."""
    negative = [a for a in stored_alerts(client, prefix) if a["kind"] == "negative_interaction"]
    assert negative or not expect_some, "the traffic raises negative-interaction alerts"
    per_intent = Counter((a["customer_id"], a["intent"]) for a in negative)
    doubled = [(a["alert_id"], a["version"], a["history"], a["signals"]) for a in negative
               if per_intent[(a["customer_id"], a["intent"])] > 1]
    assert not doubled, doubled
    for a in negative:
        keys = [(s["rule"], s["contact"]) for s in a["signals"]]
        assert len(keys) == len(set(keys)), a["alert_id"]
        assert a["version"] == len(a["history"])
        pointer = client.hget(f"{prefix}:{{{a['customer_id']}}}:niopen", a["intent"] or "")
        assert pointer is not None and pointer.decode() == a["alert_id"]
