"""Agent-context benchmark: how fast an agent gets a customer's context, under load.

    .venv/bin/python bench/context_bench.py                  # 200 customers x 1,000 entries
    .venv/bin/python bench/context_bench.py --quick          # a small run (the smoke test)
    .venv/bin/python bench/context_bench.py --json out.json  # also write the figures

It starts its own Kafka + Redis (cxt.localstack) in a temporary directory, a
worker (`python -m cxt worker`) and the dashboard (`python -m cxt dashboard`)
as child processes with tokens made for this run, then:

1. Seeds the timelines through the real path: customer records, then
   --entries timeline entries for each of --customers customers (calls, chats,
   e-mails, surveys and social posts of cxt.traffic, occurred_at spread over
   the last 300 days, two bottom-2-box surveys each so open alerts exist) sent
   to Kafka, and waits until Redis holds them all.
2. Connects --agents agent websockets (/ws/agents/A-9xx) and starts background
   traffic: `python -m cxt simulate` at --background-rate events/s into the same
   topics, so the worker and Redis are busy while the dashboard is measured.
   Its contacts go to agents A-001..A-120, none of which is connected, so
   every push the bench sees is its own (the dashboard still reads and skips
   the others, as it would in production).
3. Context reads: --requests GET /api/customers/{id}/context?intent=billing of
   random seeded customers from --concurrency keep-alive clients (as fast as
   they are answered, or paced at --read-rate requests/s; paced latency counts
   from when a request was due, so a late start is not hidden).  Every reply
   must count the whole timeline (`counts.total`), so a fast empty answer fails.
4. Pushes: --pushes `call.started` contacts (intent billing, one of the agents,
   a seeded customer) at --push-rate per second; latency is from just before the
   produce call to the agent's websocket delivering the matching
   {"type": "contact"} message (matched by context.contact.event_id).

Aims (docs/performance.md, issue 18): context read p99 < 20 ms, push p99 < 150 ms.  The run
fails (exit 1) when an answer is wrong or missing, not when an aim is missed;
the summary line says which aims were met.  Every figure includes the client:
the bench runs on the same machine as everything it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import logging
import os
import platform
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer
from latency import latency_summary, percentile
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from websockets.asyncio.client import ClientConnection, connect

from cxt.traffic import (
    CHANNEL_WEIGHTS,
    INTENTS,
    Contact,
    call_payload,
    chat_payload,
    email_payload,
    make_customers,
    rfc3339,
    social_payload,
    survey_payload,
)
from kernel.kafka import make_producer, start_producer
from kernel.settings import ApiToken, Settings
from kernel.status import StatusLine
from store.keys import Keys

REPO = Path(__file__).resolve().parent.parent

# Full run and --quick; an option given on the command line wins over both.
DEFAULTS: dict[str, Any] = {
    "customers": 200, "entries": 1000, "requests": 2000, "concurrency": 4, "read_rate": 0.0,
    "pushes": 200, "push_rate": 20.0, "agents": 8, "background_rate": 1000.0,
    "background_customers": 2000,
}
QUICK: dict[str, Any] = {
    "customers": 5, "entries": 50, "requests": 50, "concurrency": 2, "read_rate": 0.0,
    "pushes": 5, "push_rate": 20.0, "agents": 2, "background_rate": 50.0,
    "background_customers": 50,
}

AIM_CONTEXT_P99_MS = 20.0
AIM_PUSH_P99_MS = 150.0  # issue 18 (was 1 s)
INTENT = "billing"
SPREAD_DAYS = 300
BOTTOM2_PER_CUSTOMER = 2
# A reply must count at least this share of the seeded timeline; background
# traffic can only add entries (the store trims the oldest beyond its cap).
MIN_TOTAL_SHARE = 0.98
WARMUP_REQUESTS = 50
SEED_IN_FLIGHT = 5000
SEED_IDLE_TIMEOUT = 90.0  # no timeline grew for this long: the worker is stuck
READY_TIMEOUT = 90.0
BACKGROUND_SETTLE_S = 3.0  # for `cxt simulate` to start and its traffic to reach the worker
PUSH_WAIT_S = 30.0  # after the last push, for the stragglers
SETTLED_MS = 1000.0  # a probe contact this fast: no backlog left in front of the pushes
SETTLE_TIMEOUT = 120.0
STOP_TIMEOUT = 20.0
# Agents the background traffic never addresses (it uses A-001..A-120).
AGENT_BASE = 900


# --- statistics ----------------------------------------------------------------




# --- child processes -----------------------------------------------------------------


class Child:
    """`python -m cxt ...` in its own session (Ctrl-C reaches the bench only, which
    then stops its children in order), output to a log file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.command = [sys.executable, "-m", "cxt", *args]
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(self.command, cwd=REPO, env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        return self

    @property
    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def check(self) -> None:
        if self.exited:
            assert self.proc is not None
            raise RuntimeError(f"{self.name} exited with status {self.proc.returncode}:\n"
                               f"{self.tail()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


def child_env(settings: Settings) -> dict[str, str]:
    """The bench's settings for its children, and nothing of the caller's CXT_* set
    (a developer's topic names, prefix or tokens file must not leak in)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CXT_", "KAFKA_", "REDIS_"))}
    return env | {
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "CXT_TOPIC_PARTITIONS": str(settings.topics.partitions),
        "CXT_TIMELINE_MAX_ENTRIES": str(settings.timeline_max_entries),
        "CXT_DASHBOARD_HOST": settings.dashboard_host,
        "CXT_DASHBOARD_PORT": str(settings.dashboard_port),
        "CXT_API_TOKENS": ",".join(f"{t.role}:{t.subject}:{t.token}"
                                   for t in settings.api_tokens),
        # Another worker on this machine may hold the default metrics port.
        "CXT_WORKER_METRICS_PORT": "0",
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Run:
    """What the measuring coroutine needs of the private deployment."""

    settings: Settings
    service_token: str
    agent_tokens: dict[str, str]  # agent id -> token
    worker: Child
    dashboard: Child
    background: Child

    @property
    def children(self) -> list[Child]:
        return [self.worker, self.dashboard, self.background]


# --- seeding --------------------------------------------------------------------------


def customer_entries(customer: dict, count: int, seed: int, now: datetime
                     ) -> tuple[list[dict], int]:
    """`count` envelopes of one customer, oldest first, and how many are bottom-2-box.

    One bottom-2-box survey among the newest few (so the "recent bad survey"
    prompt has something to say) and one anywhere; every other survey scores 3-5.
    """
    cid = customer["customer_id"]
    rng = random.Random(f"context-bench:{seed}:{cid}")
    ages = sorted((rng.uniform(0, SPREAD_DAYS * 86_400) for _ in range(count)), reverse=True)
    bottom2 = {count - 1 - rng.randrange(min(count, 20)), rng.randrange(count)}
    social = (customer.get("identifiers", {}).get("social") or [None])[0]
    channels, weights = list(CHANNEL_WEIGHTS), list(CHANNEL_WEIGHTS.values())
    last_contact: Contact | None = None
    out: list[dict] = []
    for index, age in enumerate(ages):
        event_id = f"cb-{cid}-{index:05d}"
        channel = "survey" if index in bottom2 else rng.choices(channels, weights)[0]
        if channel == "call":
            event_type, payload = call_payload(rng)
        elif channel == "chat":
            event_type, payload = chat_payload(rng)
        elif channel == "email":
            event_type, payload = email_payload(rng)
        elif channel == "social":
            event_type, payload = social_payload(rng, social)
        else:
            event_type, payload = survey_payload(rng, last_contact,
                                                 1.0 if index in bottom2 else 0.0)
        if channel in ("call", "chat"):
            last_contact = Contact(event_id, channel, payload["agent_id"], payload["queue"])
        out.append({"event_id": event_id, "type": event_type,
                    "occurred_at": rfc3339(now - timedelta(seconds=age)),
                    "customer_id": cid, "payload": payload})
    return out, len(bottom2)


@dataclass
class SeedProgress:
    total: int
    expected_per_customer: int
    sent: int = 0
    stored: int = 0
    profiles: int = 0
    alerts: int = 0
    alerts_expected: int = 0
    started: float = field(default_factory=time.monotonic)

    def line(self, customers: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        return (f"seed: sent {self.sent:,}/{self.total:,}  stored {self.stored:,}/"
                f"{customers * self.expected_per_customer:,} ({self.stored / elapsed:,.0f}/s)  "
                f"profiles {self.profiles:,}/{customers:,}  "
                f"alerts {self.alerts:,}/{self.alerts_expected:,}")


async def _send_all(producer: AIOKafkaProducer, settings: Settings, customers: list[dict],
                    args: argparse.Namespace, progress: SeedProgress) -> None:
    now = datetime.now(UTC)
    pending: list[asyncio.Future] = []
    for customer in customers:
        envelopes, bottom2 = customer_entries(customer, args.entries, args.seed, now)
        progress.alerts_expected += bottom2
        key = customer["customer_id"].encode()
        for envelope in envelopes:
            topic = settings.topics.for_channel(envelope["type"].split(".", 1)[0])
            pending.append(await producer.send(topic, orjson.dumps(envelope), key=key))
            progress.sent += 1
            if len(pending) >= SEED_IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
    await asyncio.gather(*pending)


async def _count_stored(redis: Redis, keys: Keys, customers: list[dict],
                        progress: SeedProgress) -> None:
    pipe = redis.pipeline(transaction=False)
    for customer in customers:
        cid = customer["customer_id"]
        pipe.zcard(keys.timeline(cid))
        pipe.exists(keys.profile(cid))
        pipe.scard(keys.customer_alerts(cid))
    replies = await pipe.execute()
    cap = progress.expected_per_customer
    progress.stored = sum(min(n, cap) for n in replies[0::3])
    progress.profiles = sum(replies[1::3])
    progress.alerts = sum(replies[2::3])


async def seed(producer: AIOKafkaProducer, redis: Redis, settings: Settings,
               records: list[dict], args: argparse.Namespace) -> dict[str, Any]:
    """Customer records and timelines through Kafka, until Redis holds all of them."""
    seeded = records[:args.customers]
    futures = [await producer.send(settings.topics.customers, orjson.dumps(r),
                                   key=r["customer_id"].encode()) for r in records]
    await asyncio.gather(*futures)
    expected = min(args.entries, settings.timeline_max_entries)
    progress = SeedProgress(total=args.customers * args.entries, expected_per_customer=expected)
    keys = Keys(settings.redis_prefix)
    status = StatusLine(every=2.0)
    sender = asyncio.create_task(_send_all(producer, settings, seeded, args, progress))
    last_stored, last_change = -1, time.monotonic()
    try:
        while True:
            await _count_stored(redis, keys, seeded, progress)
            status.update(progress.line(args.customers))
            done = (sender.done() and progress.stored == args.customers * expected
                    and progress.profiles == args.customers
                    and progress.alerts >= progress.alerts_expected)
            if done:
                break
            if sender.done() and sender.exception() is not None:
                raise sender.exception()  # type: ignore[misc]
            if progress.stored != last_stored:
                last_stored, last_change = progress.stored, time.monotonic()
            elif time.monotonic() - last_change > SEED_IDLE_TIMEOUT:
                raise TimeoutError(f"seeding stalled: {progress.line(args.customers)}")
            await asyncio.sleep(0.5)
    finally:
        if not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        status.done(progress.line(args.customers))
    elapsed = time.monotonic() - progress.started
    return {"customers": args.customers, "entries_per_customer": expected,
            "events": progress.total, "customer_records": len(records),
            "seconds": round(elapsed, 1), "events_per_s": round(progress.total / elapsed, 1),
            "open_alerts": progress.alerts}


# --- the dashboard -----------------------------------------------------------------------


async def wait_ready(run: Run) -> None:
    """Until /healthz says Redis, Kafka and the live feed are up."""
    deadline = time.monotonic() + READY_TIMEOUT
    headers = {"Authorization": f"Bearer {run.service_token}"}
    async with httpx.AsyncClient(base_url=run.settings.dashboard_url, timeout=3) as client:
        while time.monotonic() < deadline:
            run.dashboard.check()
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/healthz", headers=headers)).status_code == 200:
                    return
            await asyncio.sleep(0.3)
    raise TimeoutError(f"the dashboard was not ready within {READY_TIMEOUT:.0f}s:\n"
                       f"{run.dashboard.tail()}")


CONTEXT_ROUTE = "/api/customers/{customer_id}/context"


async def server_histograms(client: httpx.AsyncClient) -> dict[str, dict[str, float]]:
    """The dashboard's own timing histograms (cumulative): context builds and the
    context route's HTTP handling, as {name: {"sum", "count", "le=<bound>": n}}."""
    reply = await client.get("/metrics")
    reply.raise_for_status()
    wanted = {"cxt_dashboard_agent_context_seconds": "build",
              "cxt_dashboard_http_request_seconds": "http"}
    out: dict[str, dict[str, float]] = {"build": {}, "http": {}}
    for family in text_string_to_metric_families(reply.text):
        name = wanted.get(family.name)
        if name is None:
            continue
        for sample in family.samples:
            if name == "http" and sample.labels.get("route") != CONTEXT_ROUTE:
                continue
            if sample.name.endswith("_sum"):
                out[name]["sum"] = sample.value
            elif sample.name.endswith("_count"):
                out[name]["count"] = sample.value
            elif sample.name.endswith("_bucket"):
                out[name][f"le={sample.labels['le']}"] = sample.value
    return out


def server_summary(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    """Mean, and the bucket bound under which 99% fell, over the requests in between."""
    count = after.get("count", 0) - before.get("count", 0)
    if count <= 0:
        return {"count": 0}
    mean_ms = (after.get("sum", 0) - before.get("sum", 0)) / count * 1000
    bounds = sorted((float(k[3:]), after[k] - before.get(k, 0))
                    for k in after if k.startswith("le="))
    p99_le = next((b for b, n in bounds if n >= 0.99 * count), float("inf"))
    return {"count": int(count), "mean_ms": round(mean_ms, 2),
            "p99_le_ms": None if p99_le == float("inf") else round(p99_le * 1000, 1)}


# --- context reads -----------------------------------------------------------------------


@dataclass
class Reads:
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    short: int = 0  # replies that did not count the whole timeline
    min_total: int | None = None
    bytes: int = 0

    def check(self, reply: httpx.Response, expected: int) -> None:
        if reply.status_code != 200:
            self.errors[f"HTTP {reply.status_code}"] += 1
            return
        self.bytes += len(reply.content)
        body = orjson.loads(reply.content)
        total = int(body.get("counts", {}).get("total", 0))
        self.min_total = total if self.min_total is None else min(self.min_total, total)
        if total < MIN_TOTAL_SHARE * expected or not body.get("events"):
            self.short += 1


async def measure_reads(run: Run, customer_ids: list[str], expected: int,
                        args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(f"reads:{args.seed}")
    headers = {"Authorization": f"Bearer {run.service_token}"}
    clients = [httpx.AsyncClient(base_url=run.settings.dashboard_url, headers=headers,
                                 timeout=30, limits=httpx.Limits(max_connections=1))
               for _ in range(args.concurrency)]
    reads = Reads()
    status = StatusLine(every=2.0)
    loop = asyncio.get_running_loop()
    next_status = [loop.time()]

    async def get(client: httpx.AsyncClient, customer_id: str) -> httpx.Response:
        return await client.get(f"/api/customers/{customer_id}/context",
                                params={"intent": INTENT})

    async def drive(client: httpx.AsyncClient, jobs: Iterator[int], count: int,
                    start: float, measured: bool) -> None:
        # One shared counter hands out request numbers, so the clients together
        # make exactly `count` requests whatever their speeds.
        for index in jobs:
            if index >= count:
                return
            customer_id = rng.choice(customer_ids)
            due = None
            if measured and args.read_rate > 0:
                due = start + index / args.read_rate
                await asyncio.sleep(max(0.0, due - loop.time()))
            began = loop.time()
            try:
                reply = await get(client, customer_id)
            except httpx.HTTPError as exc:
                reads.errors[type(exc).__name__] += 1
                continue
            ended = loop.time()
            if not measured:
                continue
            reads.latencies_ms.append((ended - (began if due is None else due)) * 1000)
            reads.check(reply, expected)
            if ended >= next_status[0]:  # sorting every time would slow the clients down
                next_status[0] = ended + status.every
                status.update(f"context: {len(reads.latencies_ms):,}/{count:,} requests  "
                              f"p99 so far {percentile(sorted(reads.latencies_ms), 99):.1f} ms",
                              force=True)

    async def phase(count: int, measured: bool) -> float:
        jobs = itertools.count()
        start = loop.time()
        await asyncio.gather(*(drive(c, jobs, count, start, measured) for c in clients))
        return loop.time() - start

    try:
        async with httpx.AsyncClient(base_url=run.settings.dashboard_url, headers=headers,
                                     timeout=10) as admin:
            await phase(min(WARMUP_REQUESTS, args.requests), measured=False)
            before = await server_histograms(admin)
            cpu_before = cpu_times(run)
            elapsed = await phase(args.requests, measured=True)
            cpu_after = cpu_times(run)
            after = await server_histograms(admin)
    finally:
        status.done()
        for client in clients:
            await client.aclose()
    done = len(reads.latencies_ms)
    return {
        "requests": args.requests, "answered": done, "concurrency": args.concurrency,
        "rate_requested": args.read_rate, "elapsed_s": round(elapsed, 2),
        "requests_per_s": round(done / elapsed, 1) if elapsed > 0 else 0.0,
        **latency_summary(reads.latencies_ms),
        "errors": dict(reads.errors), "short_replies": reads.short,
        "min_counts_total": reads.min_total, "expected_total": expected,
        "mean_reply_bytes": round(reads.bytes / done) if done else 0,
        "server_build": server_summary(before["build"], after["build"]),
        "server_http": server_summary(before["http"], after["http"]),
        "cpu": cpu_summary(cpu_before, cpu_after, elapsed, done),
    }


def cpu_times(run: Run) -> dict[str, float]:
    """CPU seconds used so far by the bench's children and itself, and by the whole
    machine (Linux /proc; empty elsewhere): what the reads cost, and whether the machine
    had any to spare (everything measured shares its cores)."""
    pids = {child.name: child.proc.pid for child in run.children if child.proc is not None}
    pids["bench client"] = os.getpid()
    found: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        tick = os.sysconf("SC_CLK_TCK")
        for name, pid in pids.items():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            found[name] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        busy = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        idle = int(busy[3]) + int(busy[4])  # idle + iowait
        found["machine busy"] = (sum(int(v) for v in busy[:8]) - idle) / tick
    return found


def cpu_summary(before: dict[str, float], after: dict[str, float], elapsed: float,
                requests: int) -> dict[str, Any]:
    """Per process: share of one core during the reads; the dashboard's CPU ms per request."""
    if elapsed <= 0 or not requests or set(before) != set(after):
        return {}
    share = {name: round((after[name] - before[name]) / elapsed, 2) for name in after}
    dashboard = after.get("dashboard", 0.0) - before.get("dashboard", 0.0)
    return {"cores_used": share, "cores": os.cpu_count(),
            "dashboard_ms_per_request": round(dashboard * 1000 / requests, 2)}


# --- pushes ----------------------------------------------------------------------------


@dataclass
class Pushes:
    # event id -> (perf_counter, wall clock s) just before the produce call; pending only
    sent_at: dict[str, tuple[float, float]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    # The same latency split at the entry's accepted_at (the worker's clock, this
    # machine's): Kafka in + the worker's queue, then store + feed + build + socket.
    pipeline_ms: list[float] = field(default_factory=list)
    dashboard_ms: list[float] = field(default_factory=list)
    probes: dict[str, float] = field(default_factory=dict)  # settle probes -> latency ms
    short: int = 0
    unexpected: int = 0  # contacts on our sockets that the bench did not send
    closed: list[str] = field(default_factory=list)


async def listen(ws: ClientConnection, pushes: Pushes, expected: int) -> None:
    try:
        async for raw in ws:
            arrived, arrived_wall = time.perf_counter(), time.time()
            message = orjson.loads(raw)
            if message.get("type") != "contact":
                continue
            context = message.get("context") or {}
            contact = context.get("contact") or {}
            event_id = contact.get("event_id")
            sent = pushes.sent_at.pop(event_id, None)
            if isinstance(event_id, str) and event_id.startswith("probe-"):
                if sent is not None:  # else a late probe, given up on already
                    pushes.probes[event_id] = (arrived - sent[0]) * 1000
                continue
            if sent is None:
                pushes.unexpected += 1
                continue
            pushes.latencies_ms.append((arrived - sent[0]) * 1000)
            accepted = _epoch_s(contact.get("accepted_at"))
            if accepted is not None:
                pushes.pipeline_ms.append((accepted - sent[1]) * 1000)
                pushes.dashboard_ms.append((arrived_wall - accepted) * 1000)
            total = int((context.get("counts") or {}).get("total", 0))
            if total < MIN_TOTAL_SHARE * expected - 1 or context.get("intent") != INTENT:
                pushes.short += 1
    except Exception as exc:  # the socket closing is a finding, not a crash of the bench
        pushes.closed.append(f"{type(exc).__name__}: {exc}")
        return
    # The bench cancels its listeners before closing: an end here is the server's doing.
    pushes.closed.append(f"closed by the server: {ws.close_code} {ws.close_reason}")


def _epoch_s(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


async def open_agent_sockets(run: Run) -> list[ClientConnection]:
    base = f"ws://{run.settings.dashboard_host}:{run.settings.dashboard_port}"
    sockets = []
    for agent, token in run.agent_tokens.items():
        ws = await connect(f"{base}/ws/agents/{agent}", open_timeout=10,
                           subprotocols=["cxt.v1", f"bearer.{token}"])  # type: ignore[arg-type]
        hello = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
        if hello.get("type") != "hello":
            raise RuntimeError(f"agent socket {agent}: expected hello, got {hello}")
        sockets.append(ws)
    return sockets


def call_started(event_id: str, customer_id: str, agent_id: str) -> dict:
    path, queue = INTENTS[INTENT]
    return {
        "event_id": event_id, "type": "call.started",
        "occurred_at": rfc3339(datetime.now(UTC)), "customer_id": customer_id,
        "payload": {"call_id": f"call-{event_id}", "direction": "inbound",
                    "ivr_path": list(path), "intent": INTENT, "queue": queue,
                    "agent_id": agent_id, "wait_seconds": 20},
    }


async def settle(run: Run, producer: AIOKafkaProducer, pushes: Pushes,
                 customer_id: str) -> float:
    """Until one probe contact comes back within SETTLED_MS; returns the seconds waited.

    The read phase can starve the worker of CPU on a small machine; the backlog
    it leaves would be timed as push latency, which is a queue, not latency.
    """
    agent = next(iter(run.agent_tokens))
    started = time.monotonic()
    for index in itertools.count():
        event_id = f"probe-{secrets.token_hex(3)}-{index}"
        pushes.sent_at[event_id] = (time.perf_counter(), time.time())
        await producer.send_and_wait(run.settings.topics.call, orjson.dumps(
            call_started(event_id, customer_id, agent)), key=customer_id.encode())
        while event_id not in pushes.probes and time.monotonic() - started < SETTLE_TIMEOUT:
            await asyncio.sleep(0.02)
        if pushes.probes.get(event_id, float("inf")) < SETTLED_MS:
            for pending in [e for e in pushes.sent_at if e.startswith("probe-")]:
                del pushes.sent_at[pending]  # late probes are not pushes gone missing
            return time.monotonic() - started
        if time.monotonic() - started >= SETTLE_TIMEOUT:
            raise TimeoutError(f"a contact still took over {SETTLED_MS:.0f} ms to reach "
                               f"the agent's socket after {SETTLE_TIMEOUT:.0f}s")
        await asyncio.sleep(0.5)
    raise AssertionError("unreachable")


async def measure_pushes(run: Run, producer: AIOKafkaProducer, pushes: Pushes,
                         customer_ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(f"pushes:{args.seed}")
    agents = list(run.agent_tokens)
    tag = secrets.token_hex(3)
    topic = run.settings.topics.call
    loop = asyncio.get_running_loop()
    waited = await settle(run, producer, pushes, customer_ids[0])
    if waited > 2:
        print(f"bench: waited {waited:.0f}s for the pipeline to catch up before the pushes",
              file=sys.stderr, flush=True)
    status = StatusLine(every=2.0)
    acks = []
    start = loop.time()
    try:
        for index in range(args.pushes):
            await asyncio.sleep(max(0.0, start + index / args.push_rate - loop.time()))
            customer_id = rng.choice(customer_ids)
            event_id = f"push-{tag}-{index:05d}"
            value = orjson.dumps(call_started(event_id, customer_id, agents[index % len(agents)]))
            pushes.sent_at[event_id] = (time.perf_counter(), time.time())
            acks.append(await producer.send(topic, value, key=customer_id.encode()))
            status.update(f"push: sent {index + 1:,}/{args.pushes:,}  "
                          f"back {len(pushes.latencies_ms):,}")
        await asyncio.gather(*acks)
        deadline = loop.time() + PUSH_WAIT_S
        while pushes.sent_at and loop.time() < deadline:
            await asyncio.sleep(0.05)
            status.update(f"push: sent {args.pushes:,}/{args.pushes:,}  "
                          f"back {len(pushes.latencies_ms):,}")
    finally:
        status.done()
    return {"pushes": args.pushes, "rate": args.push_rate, "agents": len(agents),
            "received": len(pushes.latencies_ms), "missing": len(pushes.sent_at),
            **latency_summary(pushes.latencies_ms), "short_contexts": pushes.short,
            "unexpected": pushes.unexpected, "sockets_closed": pushes.closed,
            "settle_s": round(waited, 1), "probes": len(pushes.probes),
            "to_accepted": latency_summary(pushes.pipeline_ms),
            "accepted_to_socket": latency_summary(pushes.dashboard_ms)}


# --- the whole run ---------------------------------------------------------------------


def background_figures(child: Child) -> dict[str, Any]:
    """What `cxt simulate` says it sent (its last status line)."""
    lines = [line for line in child.tail(20).splitlines() if "rate=" in line]
    match = re.search(r"sent ([\d,]+) .*rate=([\d,.]+)/s", lines[-1]) if lines else None
    if match is None:
        return {"sent": None, "rate": None}
    return {"sent": int(match[1].replace(",", "")), "rate": float(match[2].replace(",", ""))}


async def guarded(work: Awaitable[dict], run: Run) -> dict:
    """`work`, failing fast (with the log) when a child process dies."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait({task}, timeout=1.0)
        dead = next((c for c in run.children if c.exited), None)
        if not task.done() and dead is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            dead.check()
    return task.result()


async def measure(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    settings = run.settings
    await wait_ready(run)
    records = make_customers(max(args.customers, args.background_customers), args.seed)
    customer_ids = [r["customer_id"] for r in records[:args.customers]]
    expected = min(args.entries, settings.timeline_max_entries)
    producer = await start_producer(make_producer(settings))
    redis = Redis.from_url(settings.redis_url)
    sockets: list[ClientConnection] = []
    listeners: list[asyncio.Task[None]] = []
    pushes = Pushes()
    try:
        seeded = await seed(producer, redis, settings, records, args)
        sockets = await open_agent_sockets(run)
        listeners = [asyncio.create_task(listen(ws, pushes, expected)) for ws in sockets]
        run.background.start()
        print(f"bench: background traffic at {args.background_rate:,.0f} events/s "
              f"(pid {run.background.proc.pid if run.background.proc else '?'})",
              file=sys.stderr, flush=True)
        await asyncio.sleep(BACKGROUND_SETTLE_S)
        run.background.check()
        reads = await measure_reads(run, customer_ids, expected, args)
        push = await measure_pushes(run, producer, pushes, customer_ids, args)
    finally:
        for task in listeners:
            task.cancel()
        for ws in sockets:
            with contextlib.suppress(Exception):
                await ws.close()
        await producer.stop()
        await redis.aclose()
    return {"seed": seeded, "context": reads, "push": push}


def run_private(args: argparse.Namespace) -> dict[str, Any]:
    from cxt.localstack import LocalStack, free_port
    from kernel.topics import ensure_topics

    env_settings = Settings.from_env()
    # Only where the Kafka jars live and how the broker runs come from the caller's
    # environment; everything else is this run's own.
    base = Settings(cache_dir=env_settings.cache_dir, kafka_version=env_settings.kafka_version,
                    kafka_heap=env_settings.kafka_heap)
    with tempfile.TemporaryDirectory(prefix="cxt-context-bench-") as tmp:
        stack = LocalStack(base, Path(tmp))
        run: Run | None = None
        try:
            print("bench: starting a private Kafka + Redis ...", file=sys.stderr, flush=True)
            settings = stack.start()
            agent_tokens = {f"A-{AGENT_BASE + n:03d}": secrets.token_urlsafe(24)
                            for n in range(1, args.agents + 1)}
            service_token = secrets.token_urlsafe(24)
            settings = settings.with_(dashboard_port=free_port(), api_tokens=(
                ApiToken("service", "context-bench", service_token),
                *(ApiToken("agent", agent, token) for agent, token in agent_tokens.items())))
            asyncio.run(ensure_topics(settings))
            env, logs = child_env(settings), Path(tmp)
            run = Run(settings, service_token, agent_tokens,
                      worker=Child("worker", ["worker"], env, logs),
                      dashboard=Child("dashboard", ["dashboard"], env, logs),
                      background=Child("simulate", [
                          "simulate", "--rate", str(args.background_rate), "--duration", "0",
                          "--no-customers", "--customers",
                          str(max(args.customers, args.background_customers)),
                          "--seed", str(args.seed)], env, logs))
            run.worker.start()
            run.dashboard.start()
            print(f"bench: kafka {settings.kafka_bootstrap_servers}, redis {settings.redis_url},"
                  f" dashboard {settings.dashboard_url}", file=sys.stderr, flush=True)
            result = asyncio.run(guarded(measure(run, args), run))
            # SIGINT: the simulator flushes and prints its summary, which says what it sent.
            run.background.stop(signal.SIGINT)
            result["background"] = {"rate_requested": args.background_rate,
                                    **background_figures(run.background)}
            return result
        except Exception:  # not on Ctrl-C: the person knows why it stopped
            if run is not None:
                for child in run.children:
                    if child.proc is not None:
                        print(f"bench: {child.name} log tail:\n{child.tail()}", file=sys.stderr)
            raise
        finally:
            if run is not None:
                run.background.stop(signal.SIGINT)
                run.dashboard.stop()
                run.worker.stop()
            stack.stop()


# --- output ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {"cpu_count": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "loadavg": [round(x, 2) for x in os.getloadavg()]}


def problems(result: dict[str, Any]) -> list[str]:
    """Wrong or missing answers: these fail the run (a missed aim does not)."""
    reads, push = result["context"], result["push"]
    found = []
    if reads["errors"]:
        found.append(f"context read errors: {reads['errors']}")
    if reads["short_replies"]:
        found.append(f"{reads['short_replies']} context replies counted fewer than "
                     f"{MIN_TOTAL_SHARE:.0%} of {reads['expected_total']} entries")
    if push["missing"]:
        found.append(f"{push['missing']} of {push['pushes']} pushes never arrived")
    if push["short_contexts"]:
        found.append(f"{push['short_contexts']} pushed contexts were short or had the wrong "
                     "intent")
    if push["sockets_closed"]:
        found.append(f"agent sockets closed: {push['sockets_closed']}")
    return found


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    seeded, reads, push, bg = (result["seed"], result["context"], result["push"],
                               result["background"])
    print(f"agent-context benchmark: {seeded['customers']:,} customers x "
          f"{seeded['entries_per_customer']:,} entries ({seeded['open_alerts']:,} open alerts, "
          f"seeded at {seeded['events_per_s']:,.0f}/s), background "
          f"{args.background_rate:,.0f} events/s (sent {bg['rate'] or 0:,.0f}/s)")
    print(f"{'':28}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    rate = (f"{reads['requests_per_s']:,.0f} req/s, {reads['answered']:,} requests, "
            f"{reads['concurrency']} clients"
            + (f" paced at {args.read_rate:,.0f}/s" if args.read_rate else ""))
    print(f"{'context read (HTTP) ms':28}" + "".join(
        f"{reads[k]:>9.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms")) + f"   {rate}")
    print(f"{'context push (websocket) ms':28}" + "".join(
        f"{push[k]:>9.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
        + f"   {push['received']:,}/{push['pushes']:,} at {push['rate']:,.0f}/s to "
          f"{push['agents']} agents")
    split_a, split_b = push["to_accepted"], push["accepted_to_socket"]
    print(f"{'  to accepted_at ms':28}" + "".join(
        f"{split_a[k]:>9.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
        + "   produce -> Kafka -> worker accepts (ms clock)")
    print(f"{'  accepted_at to socket ms':28}" + "".join(
        f"{split_b[k]:>9.1f}" for k in ("p50_ms", "p90_ms", "p99_ms", "max_ms"))
        + "   Redis write, timeline topic, feed, context build, websocket")
    build, http = reads["server_build"], reads["server_http"]
    if build.get("count"):
        print(f"server side: context build mean {build['mean_ms']} ms (p99 <= "
              f"{build['p99_le_ms']} ms), HTTP handler mean {http.get('mean_ms')} ms (p99 <= "
              f"{http.get('p99_le_ms')} ms); reply {reads['mean_reply_bytes']:,} bytes, "
              f"counts.total >= {reads['min_counts_total']}")
    cpu = reads.get("cpu") or {}
    if cpu:
        used = ", ".join(f"{name} {share:.2f}" for name, share in cpu["cores_used"].items())
        print(f"cpu during the reads (cores of {cpu['cores']}): {used}; dashboard "
              f"{cpu['dashboard_ms_per_request']} ms per request (pushes and the feed included)")
    context_ok = reads["p99_ms"] < AIM_CONTEXT_P99_MS
    push_ok = push["received"] > 0 and push["p99_ms"] < AIM_PUSH_P99_MS
    print(f"summary: context read p99 {reads['p99_ms']:.1f} ms (aim < {AIM_CONTEXT_P99_MS:.0f} ms:"
          f" {'met' if context_ok else 'MISSED'}); push p99 {push['p99_ms']:.1f} ms (aim < "
          f"{AIM_PUSH_P99_MS:.0f} ms: {'met' if push_ok else 'MISSED'})")
    result["aims"] = {"context_p99_ms": AIM_CONTEXT_P99_MS, "context_met": context_ok,
                      "push_p99_ms": AIM_PUSH_P99_MS, "push_met": push_ok}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a small run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--customers", type=int, help="customers seeded (default 200)")
    parser.add_argument("--entries", type=int, help="timeline entries each (default 1000)")
    parser.add_argument("--requests", type=int, help="context reads timed (default 2000)")
    parser.add_argument("--concurrency", type=int, help="HTTP clients at once (default 4)")
    parser.add_argument("--read-rate", type=float,
                        help="pace the reads at this many/s in all (default 0: as fast as "
                             "they are answered)")
    parser.add_argument("--pushes", type=int, help="contacts pushed (default 200)")
    parser.add_argument("--push-rate", type=float, help="pushes per second (default 20)")
    parser.add_argument("--agents", type=int, help="agent websockets (default 8)")
    parser.add_argument("--background-rate", type=float,
                        help="events/s of `cxt simulate` while measuring (default 1000)")
    parser.add_argument("--background-customers", type=int,
                        help="customers the background traffic is spread over; the seeded "
                             "ones are the first of them (default 2000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the figures, the parameters and the machine here")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("customers", "entries", "requests", "concurrency", "pushes", "agents"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("push_rate", "background_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    if args.agents > 99:
        parser.error("--agents must be at most 99")
    return args


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM ends the run like Ctrl-C does, so every child and the stack are stopped.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    return run_bench(args, run_private, report, problems)


def run_bench(args: argparse.Namespace, run: Callable[[argparse.Namespace], dict],
              report_on: Callable[[dict, argparse.Namespace], None],
              problems_of: Callable[[dict], list[str]]) -> int:
    """A benchmark's main: run it on its private stack, print the report, write the JSON,
    exit 1 when it found a problem (this one's and bench/routing_bench.py's)."""
    # Right after topic creation aiokafka logs a warning per retried batch
    # (NotLeaderForPartition) although it recovers by itself; errors still show.
    logging.getLogger("aiokafka").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _interrupt)
    load_before = machine()["loadavg"]
    try:
        result = run(args)
    except (TimeoutError, RuntimeError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted; child processes and the stack are stopped", file=sys.stderr)
        return 130
    report_on(result, args)
    result["parameters"] = {k: (str(v) if isinstance(v, Path) else v)
                            for k, v in vars(args).items()}
    result["machine"] = machine() | {"loadavg_before": load_before}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    found = problems_of(result)
    for problem in found:
        print(f"FAILED: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())
