"""The worker: the faust-streaming app plus the batch consumer of the inbound topics.

The five inbound topics carry nearly all the traffic and go through
`streams.batch_consumer` (aiokafka batches; faust's per-record hand-off
would cap the worker far below contact-centre peaks).  The customer records
and alert actions are low-volume and run as faust agents, which take up to
`CXT_BATCH_SIZE` events or whatever arrived within `CXT_BATCH_WINDOW_MS`.
Either way a batch runs through `streams.processor`, its results are
published, Kafka confirms them, and only then are the inputs acknowledged
(`noack_take` for the agents; plain `take` would acknowledge even when the
body fails, see PITFALLS.md).  Redis or Kafka being unavailable makes the agent
wait and retry the same batch (backpressure) instead of skipping it.  Any
other error stops the worker (`CrashingSupervisor`): restarting an agent in
place would resume after the events it never stored.

Each worker serves Prometheus metrics on CXT_WORKER_METRICS_PORT
(`streams.metrics`), counted per batch here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import faust
import mode
import orjson
from aiokafka.errors import KafkaError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from domain.rules import load_rules
from kernel import logsafe
from kernel.settings import Settings
from store.stores import connect_redis, stores_on
from streams.batch_consumer import BatchConsumer
from streams.metrics import WorkerMetrics
from streams.processor import Processor
from streams.records import Outgoing, Record

log = logging.getLogger("cxt.worker")

T = TypeVar("T")
Step = Callable[[Sequence[Record]], Awaitable[list[Outgoing]]]
TRANSIENT = (RedisConnectionError, RedisTimeoutError, KafkaError, OSError)
MAX_BACKOFF_S = 5.0
STATUS_EVERY_S = 10.0
LAG_EVERY_S = 5.0


def create_app(settings: Settings, metrics: WorkerMetrics | None = None
               ) -> tuple[faust.App, BatchConsumer]:
    """The app and the inbound consumer to run beside it (`faust.Worker(app, consumer)`);
    `metrics` defaults to a fresh set with its own registry."""
    logsafe.install(settings)  # e-mail addresses and phone numbers masked in every log line
    if metrics is None:
        metrics = WorkerMetrics()
    faust_dir = settings.state_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host.strip()}" for host in settings.kafka_bootstrap_servers.split(",")],
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        # faust makes a data directory even without tables: keep it with our other state
        # instead of in whatever directory the worker was started from.
        datadir=str(faust_dir / f"{settings.app_id}-data"),
        # The leader-election topic is only needed for app.timer(on_leader=True).
        topic_disable_leader=True,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_linger_ms=5,
        producer_max_batch_size=256 * 1024,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=settings.session_timeout_s / 5,
        agent_supervisor=mode.CrashingSupervisor,
    )
    stores = stores_on(connect_redis(settings, socket_timeout=10, socket_connect_timeout=5),
                       settings)
    runner = BatchRunner(app, Processor(settings, stores.timelines, stores.alerts, load_rules(
        settings.alert_rules_path)), metrics)
    inbound = BatchConsumer(settings, "interactions", list(settings.topics.inbound.values()),
                            runner, runner.processor.interactions)
    runner.sources.append(inbound)
    steps: dict[str, tuple[faust.TopicT, Step]] = {
        "customers": (app.topic(settings.topics.customers), runner.processor.customers),
        "alert-actions": (app.topic(settings.topics.alert_actions), runner.processor.actions),
    }
    for name, (topic, step) in steps.items():
        _batch_agent(app, name, topic, runner, step, settings)

    # Every worker checks; the compare-and-set on the alert lets only one escalate it.
    @app.timer(interval=settings.escalation_check_s)
    async def escalate_overdue() -> None:
        await runner.escalate()

    @app.timer(interval=STATUS_EVERY_S)
    async def status() -> None:
        runner.log_status()

    if settings.worker_metrics_port:
        # A task, not a call in create_app: it runs once the worker has set up logging,
        # so a busy port is reported in the worker's log like everything else.
        @app.task
        async def serve_metrics() -> None:
            metrics.serve(settings.worker_metrics_port)

        @app.timer(interval=LAG_EVERY_S)
        async def refresh_lag() -> None:
            await runner.update_lag()

    return app, inbound


def _batch_agent(app: faust.App, name: str, topic: faust.TopicT, runner: BatchRunner,
                 step: Step, settings: Settings) -> None:
    """An agent that runs `step` on batches and acknowledges them once done."""
    size, within = settings.batch_size, settings.batch_window_ms / 1000

    @app.agent(topic, name=name)
    async def ingest(stream: faust.StreamT) -> None:
        async for events in stream.noack_take(size, within):
            await runner.run(name, [_record(event.message) for event in events], step)
            for event in events:
                await stream.ack(event)


class BatchRunner:
    """Runs a batch until it is stored and published, and counts the outcome."""

    def __init__(self, app: faust.App, processor: Processor, metrics: WorkerMetrics) -> None:
        self.app = app
        self.processor = processor
        self.metrics = metrics
        self.counts: Counter[str] = Counter()
        self._last_status = (time.monotonic(), 0)
        self._lag_failing = False
        self._log_starts: dict[faust.types.TP, int] = {}
        self.sources: list[BatchConsumer] = []  # consumers outside faust, for the lag gauge

    async def run(self, agent: str, records: Sequence[Record], step: Step) -> None:
        """Until `step` stored the batch and Kafka acknowledged its messages."""
        started = time.perf_counter()
        outgoing = await self.store(records, step)
        await self.until_done(lambda: self._publish(outgoing), "Kafka publish")
        self.count(agent, records, outgoing, time.perf_counter() - started)

    async def store(self, records: Sequence[Record], step: Step) -> list[Outgoing]:
        """Until `step` stored the batch; the messages it says to publish."""
        return await self.until_done(lambda: step(records), "Redis write")

    async def escalate(self) -> None:
        outgoing, due = await self.until_done(self.processor.escalations, "escalation check")
        await self.until_done(lambda: self._publish(outgoing), "Kafka publish")
        # Cleared only once published: a crash before this re-sends, never skips.
        await self.until_done(lambda: self.processor.alerts.not_due(due), "Redis write")
        self.counts["escalated"] += len(outgoing)
        self.metrics.alerts(orjson.loads(o.value or b"{}") for o in outgoing)

    async def _publish(self, outgoing: Sequence[Outgoing]) -> None:
        send = self.app.producer.send
        pending = [await send(o.topic, o.key, o.value, None, None, None) for o in outgoing]
        await asyncio.gather(*pending)

    async def until_done(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        backoff = 0.1
        while True:
            try:
                return await attempt()
            except TRANSIENT as exc:
                log.warning("%s failed (%s: %s); retrying in %.1fs, offsets not committed",
                            what, type(exc).__name__, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

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

    async def update_lag(self) -> None:
        """Refresh the consumer lag gauge; a failure only skips this round."""
        try:
            lag = await consumer_lag(self.app.consumer, self._log_starts)
            for source in self.sources:
                lag.update(await source.lag())
        except Exception as exc:  # metrics must never stop the pipeline
            # Once per run of failures (a rebalance, the broker away), not every few seconds.
            level = logging.DEBUG if self._lag_failing else logging.WARNING
            log.log(level, "consumer lag not updated (%s: %s)", type(exc).__name__, exc)
            self._lag_failing = True
            return
        self._lag_failing = False
        self.metrics.set_lag(lag)

    def log_status(self) -> None:
        then, seen = self._last_status
        now, total = time.monotonic(), self.counts["in"]
        rate = (total - seen) / max(now - then, 1e-9)
        self._last_status = (now, total)
        rejected = {k.split(":", 1)[1]: v for k, v in self.counts.items()
                    if k.startswith("rejected:")}
        log.info("status: %d records in (%.0f/s), %d timeline entries published, "
                 "%d alert events, rejected %s", total, rate, self.counts["published"],
                 self.counts["alert events"] + self.counts["escalated"], rejected or "none")


def _record(message: faust.types.Message) -> Record:
    ts = message.timestamp
    return Record(message.topic, message.partition, message.offset, message.key, message.value,
                  None if ts is None else int(ts * 1000))


async def consumer_lag(consumer: faust.types.ConsumerT,
                       log_starts: dict[faust.types.TP, int]) -> dict[tuple[str, int], int]:
    """(topic, partition) -> records not yet committed, for the partitions assigned now.

    `log_starts` caches the first offsets of partitions the group has never
    committed; it is kept up to date here.
    """
    assigned = consumer.assignment()
    for gone in log_starts.keys() - assigned:
        del log_starts[gone]
    if not assigned:
        return {}
    # The log end offsets asked of the broker, not the fetcher's cached highwater:
    # faust stops fetching a partition whose buffer is full, just when its lag matters.
    ends = await consumer.highwaters(*assigned)
    # What this worker has committed (faust keeps it per assigned partition; None
    # until the group has committed anything there): read without inserting.
    committed = consumer._committed_offset  # type: ignore[attr-defined]
    # A partition never committed counts from its first offset (retention may have
    # moved it past 0).  Asked once: the first record processed there gets committed.
    unknown = [tp for tp in assigned if committed.get(tp) is None and tp not in log_starts]
    if unknown:
        log_starts.update(await consumer.earliest_offsets(*unknown))
    lag = {}
    for tp in assigned:
        done = committed.get(tp)
        if done is None:
            done = log_starts.get(tp)
        end = ends.get(tp)
        if end is not None and done is not None:
            lag[(tp.topic, tp.partition)] = max(0, end - done)
    return lag
