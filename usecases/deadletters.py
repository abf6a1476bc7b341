"""Dead letters: find them, look at one, and replay them once the producer is fixed.

A dead letter (schemas/deadletter.v1.json) holds the rejected record's bytes, key and
source topic.  Reading takes the dead-letter topic from its oldest kept record to its end
as of the start (a group-less consumer: reading commits nothing and disturbs nobody).
Replaying sends the original bytes and key back to the source topic, in chunks: a chunk
is marked replayed in Redis once Kafka has acknowledged it (store.replays), so each dead
letter is replayed at most once however often the command runs; a replay killed mid-chunk
sends that chunk again, and the worker stores each event once (by event_id).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import orjson
from aiokafka import AIOKafkaProducer, TopicPartition

from domain.contacts import parse_ms
from kernel.errors import CxtError, InputError
from kernel.kafka import make_consumer, make_producer, start_producer
from kernel.settings import Settings
from kernel.topics import describe_topics
from store.replays import ReplayLog
from store.stores import open_stores

READ_TIMEOUT_MS = 2000


class DeadLetterError(CxtError):
    """Printed as one line; the command exits non-zero."""


@dataclass(frozen=True)
class DeadLetter:
    id: str  # "<partition>:<offset>" on the dead-letter topic
    reason: str
    message: str
    topic: str  # where the record came from
    rejected_at: str
    rejected_ms: int | None
    key: bytes | None
    original: bytes | None
    source: str  # "<topic>/<partition>@<offset>" of the rejected record

    def summary(self) -> dict[str, object]:
        """The dead letter as JSON, without the record's bytes (see `show`)."""
        return {"id": self.id, "rejected_at": self.rejected_at, "reason": self.reason,
                "message": self.message, "topic": self.topic, "source": self.source,
                "key": None if self.key is None else self.key.decode(errors="replace"),
                "bytes": None if self.original is None else len(self.original)}


@dataclass(frozen=True)
class Filter:
    reasons: frozenset[str] = frozenset()
    topics: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None

    def keeps(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.topics and letter.topic not in self.topics:
            return False
        at = letter.rejected_ms
        if self.since_ms is not None and (at is None or at < self.since_ms):
            return False
        return not (self.until_ms is not None and (at is None or at >= self.until_ms))


def parse_id(raw: str) -> tuple[int, int]:
    partition, sep, offset = raw.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise InputError(f"{raw!r} is not a dead-letter id (partition:offset, as `cxt "
                         "deadletters list` prints)")
    return int(partition), int(offset)


def _decode(raw: object) -> bytes | None:
    if raw is None:
        return None
    try:
        return base64.b64decode(str(raw), validate=True)
    except (binascii.Error, ValueError):
        return None


def _letter(partition: int, offset: int, value: bytes | None) -> DeadLetter | None:
    try:
        body = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    rejected_at = str(body.get("rejected_at") or "")
    return DeadLetter(
        id=f"{partition}:{offset}", reason=str(body.get("reason") or ""),
        message=str(body.get("message") or ""), topic=str(body.get("topic") or ""),
        rejected_at=rejected_at, rejected_ms=parse_ms(rejected_at),
        key=_decode(body.get("key")), original=_decode(body.get("original")),
        source=f"{body.get('topic')}/{body.get('partition')}@{body.get('offset')}")


async def read(settings: Settings, wanted: Filter = Filter()) -> AsyncIterator[DeadLetter]:
    """The dead letters `wanted` keeps, oldest first per partition, up to the end the
    topic had when reading started."""
    topic = settings.topics.deadletter
    count = (await describe_topics(settings)).get(topic)
    if not count:
        raise DeadLetterError(f"no topic {topic} (CXT_TOPIC_DEADLETTER); has a worker run "
                              "here, or `cxt topics create`?")
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(count)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        left = {tp for tp in parts if ends[tp] > await consumer.position(tp)}
        while left:
            batches = await consumer.getmany(*left, timeout_ms=READ_TIMEOUT_MS)
            if not batches:
                raise DeadLetterError(f"{topic}: no answer from Kafka within "
                                      f"{READ_TIMEOUT_MS / 1000:g} s while reading")
            for tp, records in batches.items():
                for record in records:
                    if record.offset >= ends[tp]:
                        break
                    letter = _letter(tp.partition, record.offset, record.value)
                    if letter is not None and wanted.keeps(letter):
                        yield letter
                if await consumer.position(tp) >= ends[tp]:
                    left.discard(tp)
    finally:
        await consumer.stop()


async def find(settings: Settings, letter_id: str) -> DeadLetter:
    partition, offset = parse_id(letter_id)
    async for letter in read(settings):
        if letter.id == f"{partition}:{offset}":
            return letter
    raise DeadLetterError(f"no dead letter {letter_id} on {settings.topics.deadletter} "
                          "(it may be past the topic's retention)")


@dataclass
class ReplayReport:
    replayed: int = 0
    already: int = 0  # replayed by an earlier run
    skipped: int = 0  # no bytes to send (a null record), or not one of our input topics

    def line(self) -> str:
        return (f"replayed {self.replayed}, skipped {self.already} replayed before and "
                f"{self.skipped} with nothing to replay")


def replayable_topics(settings: Settings) -> set[str]:
    """Where a replay may send: the topics the worker reads."""
    topics = settings.topics
    return {*topics.inbound.values(), topics.customers, topics.alert_actions}


async def replay(settings: Settings, wanted: Filter, *, chunk: int = 500,
                 dry_run: bool = False,
                 progress: Callable[[ReplayReport], None] = lambda _: None) -> ReplayReport:
    """Send the dead letters `wanted` keeps back to their source topics (see the module)."""
    report = ReplayReport()
    allowed = replayable_topics(settings)
    deadletters = settings.topics.deadletter
    async with open_stores(settings, socket_timeout=10) as stores:
        producer = None if dry_run else await start_producer(make_producer(settings))
        try:
            pending: list[DeadLetter] = []
            async for letter in read(settings, wanted):
                if letter.original is None or letter.topic not in allowed:
                    report.skipped += 1
                    continue
                pending.append(letter)
                if len(pending) >= chunk:
                    await _send(pending, producer, stores.replays, deadletters, report)
                    pending = []
                    progress(report)
            await _send(pending, producer, stores.replays, deadletters, report)
        finally:
            if producer is not None:
                await producer.stop()
    return report


async def _send(letters: Sequence[DeadLetter], producer: AIOKafkaProducer | None,
                replays: ReplayLog, deadletters: str, report: ReplayReport) -> None:
    done = await replays.replayed(deadletters, [d.id for d in letters])
    fresh = [d for d in letters if d.id not in done]
    report.already += len(letters) - len(fresh)
    if not fresh:
        return
    if producer is None:  # a dry run: count what would go
        report.replayed += len(fresh)
        return
    futures = [await producer.send(d.topic, d.original, key=d.key) for d in fresh]
    await asyncio.gather(*futures)
    await replays.mark(deadletters, [d.id for d in fresh], int(time.time() * 1000))
    report.replayed += len(fresh)
