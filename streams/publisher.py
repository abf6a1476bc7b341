"""Publishing a batch's messages as whole Kafka record batches.

`AIOKafkaProducer.send` costs more per message than the rest of our work on
it (a coroutine, a metadata check and a pure-Python murmur2 hash each time).
Here the messages of one batch are grouped by partition up front and handed
over with `send_batch`, one record batch per partition: the broker sees the
same records, the producer does a fraction of the work.

Partitions follow Kafka's default partitioner (murmur2 of the key), so a
customer's messages land where any Kafka client would put them, in order.

It is the worker's one publish path: `Outbound` owns the producer, and the batch
consumer, the agents and the escalation timer all publish through it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import mode
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner

from kernel.kafka import make_producer, start_producer
from kernel.settings import Settings
from streams.records import Outgoing

# Partitions are remembered per key (murmur2 in pure Python costs ~5 us a key); the
# cache is dropped when it grows past this.  ~100 bytes a key: at most ~20 MB.
MAX_CACHED_KEYS = 200_000


class BatchPublisher:
    def __init__(self, producer: AIOKafkaProducer) -> None:
        self.producer = producer
        self._partitioner = DefaultPartitioner()
        # Partition count -> key -> partition: the default partitioner's choice depends on
        # nothing else, so the topics with the same count (all of ours) share one entry per
        # key (a customer's timeline entries and alerts are keyed alike).
        self._hashed: dict[int, dict[bytes, int]] = {}
        self._partition_counts: dict[str, int] = {}

    async def send(self, outgoing: Sequence[Outgoing]) -> list[asyncio.Future]:
        """Queue the messages; the futures resolve when Kafka has acknowledged them."""
        producer = self.producer
        for topic in {message.topic for message in outgoing}:
            await self._check_partitions(topic)
        by_partition: dict[tuple[str, int], list[Outgoing]] = {}
        for message in outgoing:
            partition = self._partition(message.topic, message.key)
            by_partition.setdefault((message.topic, partition), []).append(message)
        futures: list[asyncio.Future] = []
        for (topic, partition), messages in by_partition.items():
            batch = producer.create_batch()
            for message in messages:
                if batch.append(key=message.key, value=message.value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    # An empty batch takes any message the producer's size limits allow.
                    batch.append(key=message.key, value=message.value, timestamp=None)
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        return futures

    async def _check_partitions(self, topic: str) -> None:
        cluster = self.producer.client.cluster
        if not cluster.partitions_for_topic(topic):
            await self.producer.partitions_for(topic)  # waits for the topic's metadata
        # New topic, or partitions were added: its keys are looked up under the new count.
        self._partition_counts[topic] = len(cluster.partitions_for_topic(topic) or ())

    def _partition(self, topic: str, key: bytes | None) -> int:
        known = self._hashed.get(self._partition_counts[topic])
        partition = None if key is None or known is None else known.get(key)
        if partition is None:
            cluster = self.producer.client.cluster
            partitions = sorted(cluster.partitions_for_topic(topic) or ())
            available = list(cluster.available_partitions_for_topic(topic) or ())
            partition = self._partitioner(key, partitions, available)
            if key is not None:
                known = self._hashed.setdefault(len(partitions), {})
                if len(known) >= MAX_CACHED_KEYS:
                    known.clear()
                known[key] = partition
        return partition


class Outbound(mode.Service):
    """The worker's producer and its `BatchPublisher`, as a service: the batch consumer
    starts and stops it, before and after the app whose agents publish through it too.

    An aiokafka producer of its own, not faust's: aiokafka's send costs half of
    faust's wrapper around it, and `send_batch` saves most of what remains.
    """

    def __init__(self, settings: Settings, client_id: str, **kwargs: Any) -> None:
        self.settings = settings
        self.client_id = client_id
        self.producer: AIOKafkaProducer | None = None
        self.publisher: BatchPublisher | None = None
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        self.producer = await start_producer(make_producer(self.settings,
                                                           client_id=self.client_id))
        self.publisher = BatchPublisher(self.producer)

    async def on_stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, outgoing: Sequence[Outgoing]) -> list[asyncio.Future]:
        """Queue the messages; the futures resolve when Kafka has acknowledged them."""
        assert self.publisher is not None, "published before the worker started"
        return await self.publisher.send(outgoing)

    async def publish(self, outgoing: Sequence[Outgoing]) -> None:
        """Send the messages and wait until Kafka has acknowledged them all."""
        await asyncio.gather(*await self.send(outgoing))
