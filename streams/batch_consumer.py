"""The hot path: the five inbound topics, consumed in whole batches with aiokafka.

Why not a faust agent like the low-volume topics: faust hands each record
to an agent on its own (a task pair per record in its fetch loop, an Event,
a queue hop, a per-record ack), which on this 2-core machine caps a worker
near 6,000 records/s before any work is done (PITFALLS.md, measured again in
bench/).  Here `getmany` hands over everything fetched so far as one batch, so
the per-record cost is our validation and nothing else.

The guarantee is the agents' one: a batch is stored in Redis and published,
Kafka has acknowledged the publishes, and only then are its offsets committed.
A crash anywhere redelivers the batch, and the idempotent store makes that a
no-op.  Up to `MAX_IN_FLIGHT` batches overlap (one waits on Redis or Kafka
while the next is validated), but their messages go out, and their offsets
are committed, in fetch order.  A rebalance waits for the batches in flight
(`_Rebalance`), so the partitions move with their offsets committed.  A batch
fetched just before its partitions moved may still be processed here:
harmless, for the same reason.

It runs as a `mode.Service` inside the faust worker (`streams.app`), which
owns the process: signals, logging, timers and the other agents.  An
unexpected error crashes that worker, as an agent's would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence
from functools import partial
from typing import Any

import mode
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from kernel.kafka import make_consumer
from kernel.settings import Settings
from streams.records import Outgoing, Record
from streams.runner import BatchRunner, Step

log = logging.getLogger("cxt.worker")

# Batches between fetch and commit at once: while one waits on Redis or Kafka the
# next is validated.  On the 2-core benchmark machine 1 gave 12,000 events/s, 2
# about 18,500 and 3 about 20,000; 4 no more than 3 (bench/compare.py).
MAX_IN_FLIGHT = 3
# One fetch response's limits (all partitions, and each one): about two full batches of
# the bench's events.  The response is held, and copied as it is read, so every MB here
# is a few MB of the worker's peak RSS; bench/compare.py, same code otherwise: 64 MB /
# 2 MB per partition 221 MB peak, 8 / 1 MB 208 MB, 4 MB / 512 KB a further ~13 MB less.
FETCH_MAX_BYTES = 4 << 20
FETCH_PARTITION_BYTES = 512 << 10


class BatchConsumer(mode.Service):
    """Feeds batches of `topics` to `runner.run(name, records, step)`, then commits."""

    def __init__(self, settings: Settings, name: str, topics: Sequence[str],
                 runner: BatchRunner, step: Step, **kwargs: Any) -> None:
        self.settings = settings
        self.name = name
        self.topics = list(topics)
        self.runner = runner
        self.step = step
        # Its own group: faust's group speaks faust's assignor protocol.
        self.group = f"{settings.app_id}-{name}"
        self.batch_lock = asyncio.Lock()
        self.consumer: AIOKafkaConsumer | None = None
        self._flights: deque[_Flight] = deque()
        super().__init__(**kwargs)

    async def on_start(self) -> None:
        settings = self.settings
        self.consumer = make_consumer(
            settings, group_id=self.group,
            partition_assignment_strategy=(RangePartitionAssignor,),
            # A batch of 2,000 bench events is ~2 MB: see FETCH_MAX_BYTES.
            max_partition_fetch_bytes=FETCH_PARTITION_BYTES, fetch_max_bytes=FETCH_MAX_BYTES)
        self.consumer.subscribe(self.topics, listener=_Rebalance(self))
        # The worker's one producer (the agents' too): up before the first batch.
        await self.runner.outbound.maybe_start()
        await self.consumer.start()
        log.info("%s: reading %s as group %s", self.name, ", ".join(self.topics), self.group)

    async def on_stop(self) -> None:
        if self.consumer is not None:
            # Let a batch in flight finish and commit before leaving the group.
            async with self.batch_lock:
                await self.settle()
                await self.consumer.stop()
        # After the last batch's messages, and after the app (and its agents) stopped.
        await self.runner.outbound.stop()

    @mode.Service.task
    async def _consume(self) -> None:
        assert self.consumer is not None
        consumer = self.consumer
        size, window_ms = self.settings.batch_size, self.settings.batch_window_ms
        while not self.should_stop:
            batches = await consumer.getmany(timeout_ms=window_ms, max_records=size)
            self._raise_failures()
            if not batches:
                continue
            async with self.batch_lock:
                while len(self._flights) >= MAX_IN_FLIGHT:
                    await self._flights.popleft().task
                records = [Record(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                           for part in batches.values() for m in part]
                offsets = {tp: part[-1].offset + 1 for tp, part in batches.items()}
                previous = self._flights[-1] if self._flights else None
                flight = _Flight()
                flight.task = asyncio.ensure_future(
                    self._handle(flight, previous, records, offsets))
                self._flights.append(flight)

    async def _handle(self, flight: _Flight, previous: _Flight | None,
                      records: Sequence[Record], offsets: dict[TopicPartition, int]) -> None:
        """Store, publish, wait for Kafka, commit: one batch, overlapping the one before.

        While the previous batch waits on Redis or Kafka, this one is validated and
        stored; its messages go out after the previous batch's, and its offsets are
        committed after the previous batch's: the output and the commits keep the
        batches' order.
        """
        started = time.perf_counter()
        try:
            outgoing = await self.runner.store(records, self.step)
            if previous is not None:
                await previous.sent.wait()
            sent = await self.runner.until_done(partial(self._send, outgoing), "Kafka publish")
        finally:
            flight.sent.set()  # a failure must not leave the next batch waiting on this one
        first_try = iter([sent])

        async def acknowledged() -> None:
            # A retry sends the whole batch again: duplicates on the output topics are
            # within the contract (at least once), a gap is not.
            futures = next(first_try, None) or await self._send(outgoing)
            await asyncio.gather(*futures)

        await self.runner.until_done(acknowledged, "Kafka publish")
        if previous is not None:
            await previous.task  # raises if it failed: then nothing after it is committed
        await self._commit(offsets)
        self.runner.count(self.name, records, outgoing, time.perf_counter() - started)

    async def _send(self, outgoing: Sequence[Outgoing]) -> list[asyncio.Future]:
        """Hand the messages to the producer; the futures resolve when Kafka has them."""
        return await self.runner.outbound.send(outgoing)

    def _raise_failures(self) -> None:
        """A batch that failed stops the worker now, not when its turn to be awaited comes."""
        while self._flights and self._flights[0].task.done():
            self._flights.popleft().task.result()

    async def settle(self) -> None:
        """Wait until every batch in flight is acknowledged and committed."""
        while self._flights:
            await self._flights.popleft().task

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self.consumer is not None
        # Partitions that moved while the batch ran are their new owner's to commit.
        assigned = self.consumer.assignment()
        mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
        if not mine:
            return
        try:
            await self.consumer.commit(mine)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            # Not lost: the batch is stored and published; whoever owns the partitions
            # next reads it again from the last commit, and the store ignores repeats.
            log.warning("%s: offsets not committed (%s: %s); the batch will be read again",
                        self.name, type(exc).__name__, exc)

    def assignment(self) -> set[TopicPartition]:
        """The partitions assigned now (for the lag gauge, `streams.lag`)."""
        return set() if self.consumer is None else self.consumer.assignment()


class _Flight:
    """One batch between fetch and commit."""

    task: asyncio.Future[None]

    def __init__(self) -> None:
        self.sent = asyncio.Event()  # its messages are with the producer (or it failed)


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: BatchConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # Wait for the batch in flight: it commits before the partitions move.
        async with self.owner.batch_lock:
            await self.owner.settle()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        log.info("%s: assigned %d partition(s)", self.owner.name, len(assigned))

