"""Batch publishing on a real broker: Kafka's default partitioning, order, big batches."""

from __future__ import annotations

import asyncio

from aiokafka.partitioner import murmur2

from cxt.localstack import LocalStack
from kernel.kafka import make_producer
from streams.publisher import BatchPublisher
from streams.records import Outgoing
from tests.support.helpers import create_topics, isolated, read_topic


def test_messages_land_where_kafkas_partitioner_puts_them_in_order(stack: LocalStack) -> None:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    topic = settings.topics.timeline
    # 40 keys x 60 messages, ~3 KB each: several record batches per partition.
    messages = [Outgoing(topic, f"C-{i % 40}".encode(), f"{i:06d}".encode() + b"x" * 3000)
                for i in range(2400)]
    messages.append(Outgoing(topic, None, b"no key"))

    async def publish() -> None:
        producer = make_producer(settings)
        await producer.start()
        try:
            publisher = BatchPublisher(producer)
            half = len(messages) // 2
            for part in (messages[:half], messages[half:]):  # cached hashes the second time
                await asyncio.gather(*await publisher.send(part))
        finally:
            await producer.stop()

    asyncio.run(publish())
    seen = asyncio.run(read_topic(settings, topic, until=lambda got: len(got) >= len(messages)))
    assert len(seen) == len(messages)
    partitions = settings.topics.partitions
    for record in seen:
        if record.key is not None:
            assert record.partition == (murmur2(record.key) & 0x7FFFFFFF) % partitions
    by_key: dict[bytes, list[int]] = {}
    for record in seen:
        if record.key is not None:
            by_key.setdefault(record.key, []).append(int(record.value[:6]))
    assert all(numbers == sorted(numbers) for numbers in by_key.values())
    assert sum(map(len, by_key.values())) == 2400
    assert [r.value for r in seen if r.key is None] == [b"no key"]
