"""Running a batch until it is stored and published, and counting it: shared by the
faust agents and the batch consumer (`streams.app` wires them, this module knows
neither, so they import it and not each other)."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol, TypeVar

import faust
import orjson

from kernel import retry
from kernel.status import Throughput
from streams.lag import LagReader
from streams.metrics import WorkerMetrics
from streams.processor import Processor
from streams.publisher import Outbound
from streams.records import Outgoing, Record

log = logging.getLogger("cxt.worker")

T = TypeVar("T")
Step = Callable[[Sequence[Record]], Awaitable[list[Outgoing]]]


class LagSource(Protocol):
    """A consumer group of this worker, for the lag gauge."""

    group: str

    def assignment(self) -> Iterable[tuple[str, int]]: ...


class BatchRunner:
    """Runs a batch until it is stored and published, and counts the outcome."""

    def __init__(self, app: faust.App, processor: Processor, metrics: WorkerMetrics,
                 outbound: Outbound, lag_reader: LagReader | None = None) -> None:
        self.app = app
        self.processor = processor
        self.metrics = metrics
        self.outbound = outbound
        self.lag_reader = lag_reader
        self.counts: Counter[str] = Counter()
        self._throughput = Throughput()
        self._lag_failing = False
        self.sources: list[LagSource] = []  # consumers outside faust, for the lag gauge
        # (topic, partition) -> Kafka timestamp (ms) of the newest record processed there.
        self.done_at: dict[tuple[str, int], int | None] = {}

    async def run(self, agent: str, records: Sequence[Record], step: Step) -> None:
        """Until `step` stored the batch and Kafka acknowledged its messages."""
        started = time.perf_counter()
        outgoing = await self.store(records, step)
        await self.until_done(lambda: self.outbound.publish(outgoing), "Kafka publish")
        self.count(agent, records, outgoing, time.perf_counter() - started)

    async def store(self, records: Sequence[Record], step: Step) -> list[Outgoing]:
        """Until `step` stored the batch; the messages it says to publish."""
        return await self.until_done(lambda: step(records), "Redis write")

    async def escalate(self) -> None:
        outgoing, due = await self.until_done(self.processor.escalations, "escalation check")
        await self.until_done(lambda: self.outbound.publish(outgoing), "Kafka publish")
        # Cleared only once published: a crash before this re-sends, never skips.
        await self.until_done(lambda: self.processor.alerts.not_due(due), "Redis write")
        self.counts["escalated"] += len(outgoing)
        self.metrics.alerts(orjson.loads(o.value or b"{}") for o in outgoing)

    async def until_done(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        return await retry.until_done(attempt, what, log,
                                      failed=lambda exc: self.metrics.failure(what, exc))

    def count(self, agent: str, records: Sequence[Record], outgoing: Sequence[Outgoing],
              seconds: float) -> None:
        topics = self.processor.topics
        accepted: Counter[str] = Counter()
        rejected: Counter[str] = Counter()
        alerts: list[dict] = []
        for message in outgoing:
            if message.value is None:  # an erased customer's tombstone: no entry, no alert
                continue
            if message.topic == topics.timeline:
                accepted[message.channel or "unknown"] += 1
            elif message.topic == topics.deadletter:
                rejected[orjson.loads(message.value or b"{}")["reason"]] += 1
            elif message.topic == topics.alerts:
                # Parsed whole: alerts are rare (a few % of surveys, plus actions).
                alerts.append(orjson.loads(message.value or b"{}"))
        self.counts["in"] += len(records)
        self.counts["published"] += sum(accepted.values())
        self.counts["alert events"] += len(alerts)
        self.counts.update({"rejected:" + reason: n for reason, n in rejected.items()})
        self.metrics.batch(agent, len(records), seconds, accepted, rejected, alerts)
        # The newest record done per partition (offset order: the last wins), for the lag
        # in seconds.
        self.done_at.update({(r.topic, r.partition): r.timestamp_ms for r in records})

    async def update_lag(self) -> None:
        """Refresh the consumer lag gauge; a failure only skips this round."""
        if self.lag_reader is None:
            return
        try:
            # faust's group (the agents' topics), then the consumers outside faust.
            lag = await self.lag_reader.lag(self.app.conf.id, self.app.consumer.assignment())
            for source in self.sources:
                lag.update(await self.lag_reader.lag(source.group, source.assignment()))
        except Exception as exc:  # metrics must never stop the pipeline
            # Once per run of failures (a rebalance, the broker away), not every few seconds.
            level = logging.DEBUG if self._lag_failing else logging.WARNING
            log.log(level, "consumer lag not updated (%s: %s)", type(exc).__name__, exc)
            self._lag_failing = True
            return
        self._lag_failing = False
        self.metrics.set_lag(lag, lag_seconds(lag, self.done_at, time.time()))

    def log_status(self) -> None:
        total = self.counts["in"]
        rate = self._throughput.rate(total)
        rejected = {k.split(":", 1)[1]: v for k, v in self.counts.items()
                    if k.startswith("rejected:")}
        log.info("status: %d records in (%.0f/s), %d timeline entries published, "
                 "%d alert events, rejected %s", total, rate, self.counts["published"],
                 self.counts["alert events"] + self.counts["escalated"], rejected or "none")


def lag_seconds(lag: Mapping[tuple[str, int], int],
                done_at: Mapping[tuple[str, int], int | None], now_s: float
                ) -> dict[tuple[str, int], float]:
    """How far behind each partition is in time: 0 with nothing left to do, else the age
    of the newest record processed there (the next one is at most that old, so this errs
    late, never early).  A partition with work left but nothing processed since the
    worker started has no figure yet: its record lag says it."""
    seconds: dict[tuple[str, int], float] = {}
    for tp, records in lag.items():
        if records == 0:
            seconds[tp] = 0.0
        elif (at := done_at.get(tp)) is not None:
            seconds[tp] = max(0.0, now_s - at / 1000)
    return seconds
