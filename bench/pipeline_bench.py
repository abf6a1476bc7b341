"""End-to-end benchmark of the running pipeline: inbound topics -> worker -> timeline topic.

    .venv/bin/python bench/pipeline_bench.py --events 100000            # throughput
    .venv/bin/python bench/pipeline_bench.py --events 20000 --rate 2000 # latency at a load
    .venv/bin/python bench/pipeline_bench.py --use-running              # against $KAFKA_...

Without --use-running it starts its own Kafka + Redis (cxt.localstack) and its
own worker (`python -m cxt worker`) in a temporary directory, so the figures
are not disturbed by anything else.  It publishes the customer records, warms
the worker up, then sends a fixed, seeded mix from cxt.traffic with
`bench_sent_ns` in each payload, and reads the timeline topic until every
event it sent has come back (or was dead-lettered, which is reported).

Latency is (timeline record timestamp - bench_sent_ns): the worker publishes
the entry after writing Redis, so this covers Kafka in, processing, Redis and
Kafka out.  The consume-time figure adds our own fetch delay.

Alert latency: every bottom-2-box survey sent (cxt.traffic.is_bottom_two_box)
should raise one alert on the alerts topic.  The bench reads that topic too and
takes (alert record timestamp - the survey's bench_sent_ns) for the first
"raised" per survey, next to the worker's own `latency_ms` (survey record's
Kafka timestamp -> raised).  The run is complete when every timeline entry and
every expected alert came back; further "raised" events for the same survey
seen before then are counted as duplicates.  Alerts still missing when nothing
has arrived for --idle-timeout seconds are reported, not fatal.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from latency import latency_summary

from cxt.produce import StatusLine, make_producer
from cxt.settings import Settings
from cxt.traffic import TrafficGenerator, is_bottom_two_box, make_customers

WARMUP_EVENTS = 100
WARMUP_ROUND_SECONDS = 15.0  # resend a fresh warm-up batch if one is not back by then
WARMUP_TIMEOUT = 180.0
WARMUP_SETTLED_MS = 500.0  # a warm-up round this fast means the worker has settled
TICK_SECONDS = 0.05
WORKER_STOP_TIMEOUT = 20.0


# --- statistics ----------------------------------------------------------------



# --- the measured run ------------------------------------------------------------

@dataclass
class Tracker:
    """Which of our events are still out, and what came back."""

    pending: dict[str, int] = field(default_factory=dict)  # event_id -> sent ns
    latency_ms: list[float] = field(default_factory=list)  # timeline timestamp - sent
    consume_latency_ms: list[float] = field(default_factory=list)  # consume time - sent
    dead: Counter[str] = field(default_factory=Counter)  # reason -> count
    seen: int = 0
    missing_bench_field: int = 0  # timeline payload lost our extra field
    first_sent_ns: int = 0
    all_acked_ns: int = 0  # when Kafka had acknowledged every send
    last_seen_ns: int = 0
    # bottom-2-box alerts (cx.alerts.v1, event "raised")
    surveys: dict[str, int] = field(default_factory=dict)  # every survey sent -> sent ns
    alert_pending: dict[str, int] = field(default_factory=dict)  # survey id -> sent ns
    alerts_expected: int = 0
    alerts_seen: int = 0
    alerts_dead_lettered: int = 0  # expected, but the survey itself was dead-lettered
    alerts_unexpected: int = 0  # raised for one of our surveys the bench did not expect
    raised: Counter[str] = field(default_factory=Counter)  # survey id -> "raised" count
    alert_latency_ms: list[float] = field(default_factory=list)  # alert timestamp - sent
    alert_worker_latency_ms: list[float] = field(default_factory=list)  # alert's latency_ms
    last_alert_ns: int = 0

    def sent(self, event_id: str, sent_ns: int, *, survey: bool = False,
             expects_alert: bool = False) -> None:
        self.pending[event_id] = sent_ns
        self.first_sent_ns = self.first_sent_ns or sent_ns
        if survey:
            self.surveys[event_id] = sent_ns
        if expects_alert:
            self.alert_pending[event_id] = sent_ns
            self.alerts_expected += 1

    def alert(self, alert: dict[str, Any], timestamp_ms: int, now_ns: int) -> None:
        if alert.get("event") != "raised":
            return  # acknowledged / escalated / ...: not a raise
        survey_id = str(alert.get("survey_event_id"))
        sent_ns = self.surveys.get(survey_id)
        if sent_ns is None:
            return  # not ours
        self.raised[survey_id] += 1
        if self.raised[survey_id] > 1:
            return  # a duplicate; only the first raise is timed
        if self.alert_pending.pop(survey_id, None) is None:
            self.alerts_unexpected += 1
            return
        self.alert_latency_ms.append((timestamp_ms * 1_000_000 - sent_ns) / 1e6)
        worker_ms = alert.get("latency_ms")
        if isinstance(worker_ms, int | float):
            self.alert_worker_latency_ms.append(float(worker_ms))
        self.alerts_seen += 1
        self.last_alert_ns = now_ns

    @property
    def alert_duplicates(self) -> int:
        """Extra "raised" events beyond the first, over all our surveys."""
        return sum(n - 1 for n in self.raised.values() if n > 1)

    @property
    def alert_duplicate_surveys(self) -> int:
        return sum(1 for n in self.raised.values() if n > 1)

    def timeline(self, entry: dict[str, Any], timestamp_ms: int, now_ns: int) -> None:
        sent_ns = self.pending.pop(str(entry.get("event_id")), None)
        if sent_ns is None:
            return  # not ours, or a repeat
        payload = entry.get("payload") or {}
        if payload.get("bench_sent_ns") != sent_ns:
            self.missing_bench_field += 1
        self.latency_ms.append((timestamp_ms * 1_000_000 - sent_ns) / 1e6)
        self.consume_latency_ms.append((now_ns - sent_ns) / 1e6)
        self.seen += 1
        self.last_seen_ns = now_ns

    def dead_letter(self, record: dict[str, Any], now_ns: int) -> None:
        try:
            original = orjson.loads(base64.b64decode(record.get("original") or ""))
        except (ValueError, orjson.JSONDecodeError):
            return
        if not isinstance(original, dict):
            return
        event_id = str(original.get("event_id"))
        if self.pending.pop(event_id, None) is not None:
            self.dead[str(record.get("reason"))] += 1
            self.last_seen_ns = now_ns
        if self.alert_pending.pop(event_id, None) is not None:
            self.alerts_dead_lettered += 1  # no alert will come for it


class Watcher:
    """Reads the timeline, dead-letter and alerts topics from their current ends."""

    def __init__(self, settings: Settings, tracker: Tracker) -> None:
        self.settings = settings
        self.tracker = tracker
        # No group: manual assignment, so nothing is committed and the
        # running pipeline's consumer groups are untouched.
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None,
            enable_auto_commit=False, fetch_max_wait_ms=20, max_partition_fetch_bytes=4 << 20,
        )

    async def start(self) -> None:
        await self.consumer.start()
        topics = (self.settings.topics.timeline, self.settings.topics.deadletter,
                  self.settings.topics.alerts)
        partitions = []
        for topic in topics:
            ids = await _partitions_of(self.consumer, topic)
            partitions += [TopicPartition(topic, p) for p in ids]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now, before anything is sent
            await self.consumer.position(tp)

    async def run(self) -> None:
        timeline, alerts = self.settings.topics.timeline, self.settings.topics.alerts
        while True:
            batches = await self.consumer.getmany(timeout_ms=200, max_records=20_000)
            now_ns = time.time_ns()
            for tp, messages in batches.items():
                for message in messages:
                    value = _json(message.value)
                    if value is None:
                        continue
                    if tp.topic == timeline:
                        self.tracker.timeline(value, message.timestamp, now_ns)
                    elif tp.topic == alerts:
                        self.tracker.alert(value, message.timestamp, now_ns)
                    else:
                        self.tracker.dead_letter(value, now_ns)

    async def stop(self) -> None:
        await self.consumer.stop()


async def _partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    # Metadata for a just-created topic can take a moment to appear; aiokafka
    # has no public call that refreshes it for a consumer without a subscription.
    for _ in range(50):
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return partitions
        await consumer._client.force_metadata_update()
        await asyncio.sleep(0.2)
    raise SystemExit(f"topic {topic} does not exist (is the pipeline set up?)")


def _json(value: bytes | None) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def make_events(count: int, customers: list[dict], seed: int) -> list[tuple[str, dict]]:
    """The seeded mix, with event ids made unique to this run.

    The pipeline de-duplicates by event_id, so a second run against the same
    pipeline would otherwise see nothing come back; survey contact_ids are
    rewritten the same way so they still point at the rated contact.
    """
    run = secrets.token_hex(4)
    renamed: dict[str, str] = {}
    events = TrafficGenerator(customers, seed).take(count)
    for index, (_, envelope) in enumerate(events):
        renamed[envelope["event_id"]] = envelope["event_id"] = f"bench-{run}-{index:08d}"
        payload = envelope["payload"]
        if payload.get("contact_id") in renamed:
            payload["contact_id"] = renamed[payload["contact_id"]]
    return events


async def send_event(producer: AIOKafkaProducer, settings: Settings, tracker: Tracker,
                     channel: str, envelope: dict) -> asyncio.Future:
    sent_ns = time.time_ns()
    payload = envelope["payload"]
    payload["bench_sent_ns"] = sent_ns
    survey = channel == "survey"
    tracker.sent(envelope["event_id"], sent_ns, survey=survey,
                 expects_alert=survey and is_bottom_two_box(payload))
    key = envelope.get("customer_id")
    return await producer.send(settings.topics.for_channel(channel), orjson.dumps(envelope),
                               key=key.encode() if key else None)


async def send_all(producer: AIOKafkaProducer, settings: Settings, tracker: Tracker,
                   events: list[tuple[str, dict]], rate: float, status: StatusLine) -> None:
    """As fast as possible (rate 0) or paced in ticks at `rate` events/s."""
    futures: list[asyncio.Future] = []
    loop = asyncio.get_running_loop()
    started, index = loop.time(), 0
    while index < len(events):
        due = len(events) if rate <= 0 else min(
            len(events), int(rate * (loop.time() - started)) + 1)
        while index < due:
            futures.append(await send_event(producer, settings, tracker, *events[index]))
            index += 1
            if index % 1000 == 0:
                status.update(_progress(tracker, index, len(events)))
        if rate > 0:
            await asyncio.sleep(TICK_SECONDS)
            status.update(_progress(tracker, index, len(events)))
    await asyncio.gather(*futures)
    tracker.all_acked_ns = time.time_ns()


def _progress(tracker: Tracker, sent: int, total: int) -> str:
    elapsed = max((time.time_ns() - tracker.first_sent_ns) / 1e9, 1e-9)
    dead = sum(tracker.dead.values())
    return (f"bench: sent {sent:,}/{total:,}  back {tracker.seen:,}"
            f"{f'  dead-lettered {dead:,}' if dead else ''}  "
            f"alerts {tracker.alerts_seen:,}/{tracker.alerts_expected:,}  "
            f"({tracker.seen / elapsed:,.0f}/s through)")


async def wait_back(tracker: Tracker, idle_timeout: float, status: StatusLine,
                    total: int) -> None:
    """Until no event and no expected alert is pending.

    After `idle_timeout` s without progress: TimeoutError if timeline entries are
    still missing; if only alerts are, return (they are reported as missing).
    """
    last_count, last_progress = -1, time.monotonic()
    while tracker.pending or tracker.alert_pending:
        count = (tracker.seen + sum(tracker.dead.values())
                 + tracker.alerts_seen + tracker.alerts_dead_lettered)
        if count != last_count:
            last_count, last_progress = count, time.monotonic()
        elif time.monotonic() - last_progress > idle_timeout:
            if not tracker.pending:
                return
            raise TimeoutError(f"{len(tracker.pending):,} event(s) never came back, "
                               f"{len(tracker.alert_pending):,} expected alert(s) missing "
                               f"(no progress for {idle_timeout:.0f}s)")
        status.update(_progress(tracker, total, total))
        await asyncio.sleep(0.05)


async def publish_customers(producer: AIOKafkaProducer, settings: Settings,
                            customers: list[dict]) -> None:
    futures = [await producer.send(settings.topics.customers, orjson.dumps(c),
                                   key=c["customer_id"].encode()) for c in customers]
    await asyncio.gather(*futures)


async def warm_up(producer: AIOKafkaProducer, settings: Settings, customers: list[dict],
                  seed: int) -> None:
    """Until one batch of events comes back through the worker, quickly.

    A freshly started worker may still be joining its group when the first
    batch is sent; the batch is not lost (it reads from the earliest offset)
    but a fresh one per round keeps the wait bounded and the log honest.
    """
    deadline = time.monotonic() + WARMUP_TIMEOUT
    round_no = 0
    while time.monotonic() < deadline:
        round_no += 1
        tracker = Tracker()
        watcher = Watcher(settings, tracker)
        await watcher.start()
        reader = asyncio.create_task(watcher.run())
        try:
            for channel, envelope in make_events(WARMUP_EVENTS, customers, seed + round_no):
                await send_event(producer, settings, tracker, channel, envelope)
            await producer.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_drained(tracker), WARMUP_ROUND_SECONDS)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await watcher.stop()
        slowest = max(tracker.latency_ms, default=0.0)
        if not tracker.pending and slowest < WARMUP_SETTLED_MS:
            return
        if tracker.pending:
            print(f"bench: warm-up round {round_no}: {len(tracker.pending)} of {WARMUP_EVENTS} "
                  f"not back yet, retrying", file=sys.stderr, flush=True)
        else:
            # Right after start the group may still rebalance, adding seconds of lag
            # that are not the steady state this benchmark is about.
            print(f"bench: warm-up round {round_no}: slowest {slowest:.0f} ms, waiting for "
                  f"the worker to settle", file=sys.stderr, flush=True)
            await asyncio.sleep(1.0)
    raise TimeoutError(f"the worker did not answer within {WARMUP_TIMEOUT:.0f}s")


async def _drained(tracker: Tracker) -> None:
    while tracker.pending:
        await asyncio.sleep(0.05)


@dataclass
class Result:
    mode: str
    events: int
    rate_requested: float
    elapsed_s: float
    events_per_s: float
    # How fast the bench itself got the events into Kafka: if this is close to
    # events_per_s, the bench (not the worker) may be the limit.
    send_events_per_s: float
    latency: dict[str, float]
    consume_latency: dict[str, float]
    dead_lettered: dict[str, int]
    missing_bench_field: int
    alerts_expected: int
    alerts_seen: int
    alerts_missing: int  # expected, never seen before the run ended (idle timeout)
    alerts_dead_lettered: int  # expected, but the survey was dead-lettered
    alerts_unexpected: int
    alert_duplicates: int  # extra "raised" events for the same survey
    alert_duplicate_surveys: int
    alert_latency: dict[str, float]  # alert record timestamp - survey sent
    alert_worker_latency: dict[str, float]  # the alerts' own latency_ms
    customers: int
    seed: int
    partitions: int
    kafka: str


def build_result(tracker: Tracker, args: argparse.Namespace, settings: Settings) -> Result:
    elapsed = max((tracker.last_seen_ns - tracker.first_sent_ns) / 1e9, 1e-9)
    sending = max((tracker.all_acked_ns - tracker.first_sent_ns) / 1e9, 1e-9)
    return Result(
        mode="paced" if args.rate > 0 else "throughput",
        events=args.events,
        rate_requested=args.rate,
        elapsed_s=round(elapsed, 3),
        events_per_s=round(args.events / elapsed, 1),
        send_events_per_s=round(args.events / sending, 1),
        latency=latency_summary(tracker.latency_ms),
        consume_latency=latency_summary(tracker.consume_latency_ms),
        dead_lettered=dict(tracker.dead),
        missing_bench_field=tracker.missing_bench_field,
        alerts_expected=tracker.alerts_expected,
        alerts_seen=tracker.alerts_seen,
        alerts_missing=len(tracker.alert_pending),
        alerts_dead_lettered=tracker.alerts_dead_lettered,
        alerts_unexpected=tracker.alerts_unexpected,
        alert_duplicates=tracker.alert_duplicates,
        alert_duplicate_surveys=tracker.alert_duplicate_surveys,
        alert_latency=latency_summary(tracker.alert_latency_ms),
        alert_worker_latency=latency_summary(tracker.alert_worker_latency_ms),
        customers=args.customers,
        seed=args.seed,
        partitions=settings.topics.partitions,
        kafka=settings.kafka_bootstrap_servers,
    )


async def measure(settings: Settings, args: argparse.Namespace) -> Result:
    """The whole measured run against a pipeline that is already running."""
    customers = make_customers(args.customers, args.seed)
    events = make_events(args.events, customers, args.seed)  # generated before timing
    producer = make_producer(settings)
    await producer.start()
    try:
        await publish_customers(producer, settings, customers)
        print(f"bench: published {len(customers):,} customers; warming up",
              file=sys.stderr, flush=True)
        await warm_up(producer, settings, customers, args.seed)
        return await _timed_run(producer, settings, args, events)
    finally:
        await producer.stop()


async def _timed_run(producer: AIOKafkaProducer, settings: Settings, args: argparse.Namespace,
                     events: list[tuple[str, dict]]) -> Result:
    tracker = Tracker()
    watcher = Watcher(settings, tracker)
    await watcher.start()  # at the ends, before the first send
    reader = asyncio.create_task(watcher.run())
    status = StatusLine(every=2.0)
    try:
        await send_all(producer, settings, tracker, events, args.rate, status)
        await wait_back(tracker, args.idle_timeout, status, len(events))
    finally:
        status.done()
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await watcher.stop()
    return build_result(tracker, args, settings)


# --- the private stack ----------------------------------------------------------

class Worker:
    """The worker as a subprocess, logging to a file."""

    def __init__(self, command: list[str], settings: Settings, log_path: Path) -> None:
        self.command = command
        self.log_path = log_path
        self.env = os.environ | {
            "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
            "REDIS_URL": settings.redis_url,
            # No metrics endpoint: it would clash with a developer's `cxt up` worker.
            "CXT_WORKER_METRICS_PORT": "0",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def check(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with status {self.proc.returncode}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(WORKER_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


async def ensure_topics(settings: Settings) -> None:
    from streams.topics import ensure_topics as create  # the pipeline's own topic set-up

    await create(settings)


async def measure_with_worker(settings: Settings, args: argparse.Namespace,
                              worker: Worker) -> Result:
    """`measure`, failing fast (with the worker's log) if the worker dies."""
    task = asyncio.create_task(measure(settings, args))
    while not task.done():
        await asyncio.wait({task}, timeout=1.0)
        if not task.done() and worker.proc is not None and worker.proc.poll() is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            worker.check()
    return task.result()


def run_private(args: argparse.Namespace) -> Result:
    from cxt.localstack import LocalStack

    with tempfile.TemporaryDirectory(prefix="cxt-bench-") as tmp:
        stack = LocalStack(Settings.from_env(), Path(tmp))
        print("bench: starting a private Kafka + Redis ...", file=sys.stderr, flush=True)
        settings = stack.start()
        worker = Worker(args.worker_cmd, settings, Path(tmp) / "worker.log")
        try:
            asyncio.run(ensure_topics(settings))
            worker.start()
            print(f"bench: kafka {settings.kafka_bootstrap_servers}, redis {settings.redis_url},"
                  f" worker pid {worker.proc.pid if worker.proc else '?'}",
                  file=sys.stderr, flush=True)
            return asyncio.run(measure_with_worker(settings, args, worker))
        except BaseException:
            print(f"bench: worker log tail:\n{worker.tail()}", file=sys.stderr)
            raise
        finally:
            worker.stop()
            stack.stop()


# --- output ------------------------------------------------------------------------

def report(result: Result, out: Path | None) -> None:
    lat, cons = result.latency, result.consume_latency
    print(f"mode          {result.mode}"
          f"{f' at {result.rate_requested:,.0f}/s' if result.rate_requested else ''}")
    print(f"events        {result.events:,}")
    print(f"elapsed       {result.elapsed_s:.2f} s (first send to last timeline entry)")
    print(f"throughput    {result.events_per_s:,.0f} events/s "
          f"(sending alone: {result.send_events_per_s:,.0f}/s)")
    print(f"latency ms    p50 {lat['p50_ms']}  p90 {lat['p90_ms']}  p99 {lat['p99_ms']}  "
          f"max {lat['max_ms']}  (timeline record timestamp - sent)")
    print(f"  at reader   p50 {cons['p50_ms']}  p90 {cons['p90_ms']}  p99 {cons['p99_ms']}  "
          f"max {cons['max_ms']}  (consume time - sent)")
    alat, wlat = result.alert_latency, result.alert_worker_latency
    extra = ""
    if result.alerts_dead_lettered:
        extra += f"  survey dead-lettered {result.alerts_dead_lettered:,}"
    if result.alerts_unexpected:
        extra += f"  unexpected {result.alerts_unexpected:,}"
    print(f"alerts        expected {result.alerts_expected:,}  seen {result.alerts_seen:,}  "
          f"missing {result.alerts_missing:,}  duplicates {result.alert_duplicates:,} "
          f"(on {result.alert_duplicate_surveys:,} survey(s)){extra}")
    print(f"alert lat ms  p50 {alat['p50_ms']}  p90 {alat['p90_ms']}  p99 {alat['p99_ms']}  "
          f"max {alat['max_ms']}  (alert record timestamp - survey sent)")
    print(f"  by worker   p50 {wlat['p50_ms']}  p99 {wlat['p99_ms']}  max {wlat['max_ms']}  "
          f"(alert latency_ms: survey Kafka timestamp -> raised)")
    if result.alerts_missing:
        print(f"WARNING: {result.alerts_missing:,} expected alert(s) never arrived")
    if result.dead_lettered:
        print(f"dead-lettered {result.dead_lettered}")
    if result.missing_bench_field:
        print(f"WARNING: {result.missing_bench_field} timeline payload(s) lost bench_sent_ns")
    line = orjson.dumps(asdict(result))
    print(line.decode())
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(orjson.dumps(asdict(result), option=orjson.OPT_INDENT_2) + b"\n")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000, help="events to time")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="events/s to pace at (default 0: as fast as possible)")
    parser.add_argument("--use-running", action="store_true",
                        help="measure the pipeline at $KAFKA_BOOTSTRAP_SERVERS instead of "
                             "starting a private stack and worker")
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--idle-timeout", type=float, default=60.0,
                        help="give up when nothing came back for this many seconds")
    parser.add_argument("--worker-cmd", type=shlex.split,
                        default=[sys.executable, "-m", "cxt", "worker"],
                        help="command that runs the worker (default: python -m cxt worker)")
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if args.events < 1:
        parser.error("--events must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Right after topic creation aiokafka logs a warning per retried batch
    # (NotLeaderForPartition) although it recovers by itself; errors still show.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    try:
        if args.use_running:
            result = asyncio.run(measure(Settings.from_env(), args))
        else:
            result = run_private(args)
    except (TimeoutError, RuntimeError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    report(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
