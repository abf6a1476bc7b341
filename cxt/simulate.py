"""Live synthetic traffic at a steady rate (`cxt simulate`), and sample files.

`simulate` first publishes the customer records, so the pipeline can resolve
identities, and the agent records (cx.agents.v1, for the routing hint), then
sends the mixed traffic of `cxt.traffic` at the requested rate until the
duration is up or it is cancelled (Ctrl-C): everyday contacts (half the known
customers' calls and chats offered by the IVR first: call.offered, chat.offered)
and, for a share of customers, a bad experience (angry words, a call
transferred again and again or left waiting, an abandoned call and another
contact, three contacts about one thing) that some of them follow with a
bottom-2-box survey, the traffic `cxt report early-warning` is measured on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from aiokafka import AIOKafkaProducer

from cxt.traffic import TrafficGenerator, is_bottom_two_box, make_agents, make_customers
from kernel.kafka import make_producer, start_producer
from kernel.settings import CHANNELS, Settings

# Pace in ticks rather than per event: one sleep per tick keeps the loop cheap
# at thousands of events/s and lets aiokafka batch each tick's sends.
TICK_SECONDS = 0.05
# Never try to catch up more than this many seconds of backlog in one tick
# (after a GC pause or a slow broker), so we don't fire a huge burst.
MAX_CATCH_UP_SECONDS = 1.0
FLUSH_TIMEOUT = 15.0
# The share of known customers' calls and chats the IVR offers first (call.offered,
# chat.offered), so the worker's routing hints have traffic in the demo.
OFFERED_SHARE = 0.5


@dataclass
class SimulationReport:
    customers_published: int = 0
    agents_published: int = 0
    sent_by_channel: Counter[str] = field(default_factory=Counter)
    bottom2_surveys: int = 0
    bad_experiences: int = 0  # customers sent a bad experience (cxt.traffic's stories)
    failed: int = 0
    elapsed: float = 0.0
    cancelled: bool = False

    @property
    def sent(self) -> int:
        return sum(self.sent_by_channel.values())

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def summary(self) -> str:
        channels = " ".join(f"{c}={self.sent_by_channel[c]}" for c in CHANNELS)
        text = (f"{self.elapsed:6.1f}s sent {self.sent:,} ({channels}) "
                f"bottom-2-box={self.bottom2_surveys} bad-experiences={self.bad_experiences} "
                f"rate={self.rate:,.1f}/s")
        if self.failed:
            text += f" FAILED={self.failed}"
        return text


async def send_customers(producer: AIOKafkaProducer, settings: Settings,
                            customers: list[dict]) -> int:
    """Send every customer record, keyed by customer_id, and wait for the acks."""
    futures = [
        await producer.send(settings.topics.customers, orjson.dumps(c),
                            key=c["customer_id"].encode())
        for c in customers
    ]
    await asyncio.gather(*futures)
    return len(futures)


async def send_agents(producer: AIOKafkaProducer, settings: Settings,
                      agents: list[dict]) -> int:
    """Send every agent record, keyed by agent_id, and wait for the acks."""
    futures = [
        await producer.send(settings.topics.agents, orjson.dumps(a), key=a["agent_id"].encode())
        for a in agents
    ]
    await asyncio.gather(*futures)
    return len(futures)


class _Sender:
    """Sends generated events, keeping the counts and checking acks lazily."""

    def __init__(self, producer: AIOKafkaProducer, settings: Settings,
                 traffic: TrafficGenerator, report: SimulationReport) -> None:
        self.producer = producer
        self.settings = settings
        self.traffic = traffic
        self.report = report
        self.pending: list[asyncio.Future] = []

    async def send(self, count: int) -> None:
        for _ in range(count):
            channel, envelope = self.traffic.next_event()
            key = envelope.get("customer_id")
            self.pending.append(await self.producer.send(
                self.settings.topics.for_channel(channel), orjson.dumps(envelope),
                key=key.encode() if key else None))
            self.report.sent_by_channel[channel] += 1
            if channel == "survey" and is_bottom_two_box(envelope["payload"]):
                self.report.bottom2_surveys += 1
        self.report.bad_experiences = self.traffic.bad_experiences
        self.reap()

    def reap(self) -> None:
        """Drop acknowledged sends; count failures (aiokafka already retried them)."""
        still = []
        for fut in self.pending:
            if not fut.done():
                still.append(fut)
            elif fut.cancelled() or fut.exception() is not None:
                self.report.failed += 1
        self.pending = still


async def _run_paced(sender: _Sender, rate: float, duration: float,
                     status_every: float, started: float) -> None:
    loop = asyncio.get_running_loop()
    sent = 0
    next_status = started + status_every
    while duration <= 0 or loop.time() - started < duration:
        elapsed = loop.time() - started
        if duration > 0:
            elapsed = min(elapsed, duration)
        due = int(rate * elapsed) - sent
        due = min(due, int(rate * MAX_CATCH_UP_SECONDS) + 1)
        if due > 0:
            await sender.send(due)
            sent += due
        if status_every > 0 and loop.time() >= next_status:
            sender.report.elapsed = loop.time() - started
            _status(sender.report.summary())
            next_status += status_every
        await asyncio.sleep(TICK_SECONDS)
    # The last partial tick: send whatever the full duration owed.
    await sender.send(max(0, int(rate * duration) - sent))


def _status(text: str) -> None:
    print(f"simulate: {text}", file=sys.stderr, flush=True)


async def _flush(producer: AIOKafkaProducer) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(producer.flush(), FLUSH_TIMEOUT)


async def simulate(
    settings: Settings,
    *,
    rate: float,
    duration: float,
    customers: int = 2000,
    seed: int = 7,
    publish_customers: bool = True,
    status_every: float = 5.0,
) -> SimulationReport:
    """Produce traffic at `rate` events/s for `duration` s (0 = until cancelled).

    Cancellation (Ctrl-C under asyncio.run) ends the run cleanly: what was
    sent is flushed, the producer stopped, and the report returned with
    `cancelled=True` instead of the CancelledError, so the CLI can print it.
    """
    if rate <= 0:
        raise ValueError("rate must be > 0 events/s")
    records = make_customers(customers, seed)
    # The stories of the traffic (a call ended minutes after it started, a survey after
    # a bad experience) are timed in events: at `rate` they take the seconds they say.
    agents = make_agents(seed, updated_at=datetime.now(UTC))
    traffic = TrafficGenerator(records, seed, pace=rate, offered_share=OFFERED_SHARE,
                               agents=agents)
    report = SimulationReport()
    producer = make_producer(settings)
    await start_producer(producer)
    loop = asyncio.get_running_loop()
    started = loop.time()
    sender = _Sender(producer, settings, traffic, report)
    try:
        if publish_customers:
            report.customers_published = await _publish(producer, settings, records)
            report.agents_published = await send_agents(producer, settings, agents)
            _status(f"published {report.agents_published:,} agent records to "
                    f"{settings.topics.agents}")
        started = loop.time()
        await _run_paced(sender, rate, duration, status_every, started)
    except asyncio.CancelledError:
        report.cancelled = True
    finally:
        await _flush(producer)
        await producer.stop()
        sender.reap()
        report.elapsed = loop.time() - started
        if status_every > 0:
            _status(report.summary())
    return report


async def _publish(producer: AIOKafkaProducer, settings: Settings, records: list[dict]) -> int:
    count = await send_customers(producer, settings, records)
    _status(f"published {count:,} customer records to {settings.topics.customers}")
    return count


def write_sample(path: str | os.PathLike[str], n: int, seed: int = 7, *,
                 customers: int = 2000, now: datetime | None = None) -> int:
    """Write `n` generated events as JSON lines (for `cxt produce`); returns n.

    Identities refer to `make_customers(customers, seed)`; `write_customers`
    with the same arguments writes those records.
    """
    traffic = TrafficGenerator(make_customers(customers, seed), seed,
                               now=(lambda: now) if now else None)
    with Path(path).open("wb") as out:
        for _ in range(n):
            out.write(orjson.dumps(traffic.next_event()[1]) + b"\n")
    return n


def write_customers(path: str | os.PathLike[str], customers: int = 2000, seed: int = 7) -> int:
    """Write the customer records as JSON lines (for `cxt produce --topic ...customers`)."""
    records = make_customers(customers, seed)
    with Path(path).open("wb") as out:
        for record in records:
            out.write(orjson.dumps(record) + b"\n")
    return len(records)


def main() -> None:
    """Tiny entry point for trying the simulator without the CLI."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    report = asyncio.run(simulate(Settings.from_env(), rate=args.rate, duration=args.duration,
                                  customers=args.customers, seed=args.seed))
    print(report.summary())
    raise SystemExit(1 if report.failed else 0)


if __name__ == "__main__":
    main()
