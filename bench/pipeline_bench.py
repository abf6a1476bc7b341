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
import contextlib
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer
from harness import (
    Tracker,
    Watcher,
    Worker,
    ensure_topics,
    make_events,
    private_stack,
    worker_env,
)
from latency import latency_summary

from cxt.traffic import is_bottom_two_box, make_customers
from kernel.kafka import make_producer
from kernel.settings import Settings
from kernel.status import StatusLine

WARMUP_EVENTS = 100
WARMUP_ROUND_SECONDS = 15.0  # resend a fresh warm-up batch if one is not back by then
WARMUP_TIMEOUT = 180.0
WARMUP_SETTLED_MS = 500.0  # a warm-up round this fast means the worker has settled
TICK_SECONDS = 0.05


# --- the measured run ------------------------------------------------------------

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
    print("bench: starting a private Kafka + Redis ...", file=sys.stderr, flush=True)
    with private_stack(Settings.from_env()) as (settings, tmp):
        worker = Worker(args.worker_cmd, worker_env(settings), tmp / "worker.log", cwd=tmp)
        try:
            asyncio.run(ensure_topics(settings))
            worker.start()
            print(f"bench: kafka {settings.kafka_bootstrap_servers}, redis {settings.redis_url},"
                  f" worker pid {worker.pid or '?'}", file=sys.stderr, flush=True)
            return asyncio.run(measure_with_worker(settings, args, worker))
        except BaseException:
            print(f"bench: worker log tail:\n{worker.tail()}", file=sys.stderr)
            raise
        finally:
            worker.stop()


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
