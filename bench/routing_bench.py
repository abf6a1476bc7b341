"""Routing data-dip benchmark: GET /api/routing while the caller waits, under load.

    .venv/bin/python bench/routing_bench.py                  # 200 requests/s for 30 s
    .venv/bin/python bench/routing_bench.py --quick          # a small run (the smoke test)
    .venv/bin/python bench/routing_bench.py --json out.json  # also write the figures

It starts its own Kafka + Redis (cxt.localstack) in a temporary directory, a worker
and the dashboard as child processes with a service token made for this run (the
harness of bench/context_bench.py), then:

1. Publishes the demo's 120 agent records (cxt.traffic.make_agents) on cx.agents.v1
   and seeds --customers customers with --entries timeline entries each through the
   real path (context_bench's seeding: calls, chats, e-mails, social posts and surveys
   naming agents, two bottom-2-box surveys each, so every seeded caller has open
   alerts, ratings of agents and the agents have outcomes), until Redis holds them.
2. Starts background traffic: `python -m cxt simulate` at --background-rate events/s
   (its calls and chats partly offered first, so the worker writes hints too).
3. Asks GET /api/routing at --rate requests/s for --duration seconds, paced: each
   request has its due time, --connections senders on keep-alive connections take
   them in order, and latency counts from when a request was due (a request sent late
   because every sender was busy is not timed from its late start).  The callers are
   mixed: 40% by phone, 25% by e-mail, 25% by customer id, 10% unknown (a phone or an
   id nobody has); the intent is drawn as the traffic draws it.  Every reply must be a
   200 that names the caller asked for (or none for an unknown one) and ranks agents.

Aim: p99 < 10 ms.  The run fails (exit 1) when an answer is wrong or missing, not when
the aim is missed; the summary line says whether it was met.  Every figure includes
the client, which runs on the same machine as everything it measures.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import secrets
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from context_bench import (
    Child,
    Run,
    child_env,
    guarded,
    run_bench,
    seed,
    server_summary,
    wait_ready,
)
from latency import latency_summary, percentile
from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis

from cxt.traffic import INTENT_WEIGHTS, INTENTS, make_agents, make_customers
from kernel.kafka import make_producer, start_producer
from kernel.settings import ApiToken, Settings
from kernel.status import StatusLine
from store.keys import Keys

DEFAULTS: dict[str, Any] = {
    "customers": 2000, "entries": 30, "rate": 200.0, "duration": 30.0, "connections": 8,
    "background_rate": 1000.0, "background_customers": 20000,
}
QUICK: dict[str, Any] = {
    "customers": 20, "entries": 10, "rate": 50.0, "duration": 3.0, "connections": 4,
    "background_rate": 50.0, "background_customers": 200,
}
AIM_P99_MS = 10.0
MIX = (("phone", 40), ("email", 25), ("customer_id", 25), ("unknown", 10))
ROUTE = "/api/routing"
WARMUP_REQUESTS = 100
AGENTS_TIMEOUT_S = 60.0
BACKGROUND_SETTLE_S = 3.0
SETTLE_TIMEOUT_S = 180.0


# --- what is asked ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ask:
    params: dict[str, str]
    customer_id: str | None  # the caller the answer must name; None: unknown

    @property
    def kind(self) -> str:
        """How the caller is named, for the latencies by kind."""
        return "unknown" if self.customer_id is None else next(
            k for k in ("phone", "email", "customer_id") if k in self.params)


def asks_for(records: Sequence[dict], count: int, rng: random.Random) -> list[Ask]:
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    intents, intent_weights = list(INTENTS), list(INTENT_WEIGHTS)
    out = []
    for _ in range(count):
        kind = rng.choices(kinds, weights)[0]
        intent = rng.choices(intents, intent_weights)[0]
        record = rng.choice(records)
        cid = record["customer_id"]
        if kind == "phone":
            out.append(Ask({"phone": record["identifiers"]["phones"][0], "intent": intent}, cid))
        elif kind == "email":
            out.append(Ask({"email": record["identifiers"]["emails"][0], "intent": intent,
                            "channel": "chat"}, cid))
        elif kind == "customer_id":
            out.append(Ask({"customer_id": cid, "intent": intent}, cid))
        elif rng.random() < 0.5:
            out.append(Ask({"phone": f"+4479{rng.randrange(10**8):08d}", "intent": intent},
                           None))
        else:
            out.append(Ask({"customer_id": f"C-X{rng.randrange(10**9):09d}"}, None))
    return out


# --- the agents -------------------------------------------------------------------


async def publish_agents(settings: Settings, redis: Redis, seed_value: int) -> int:
    agents = make_agents(seed_value, updated_at=datetime.now(UTC))
    producer = await start_producer(make_producer(settings))
    try:
        for record in agents:
            await producer.send(settings.topics.agents, orjson.dumps(record),
                                key=record["agent_id"].encode())
        await producer.flush()
    finally:
        await producer.stop()
    key = Keys(settings.redis_prefix).agents()
    deadline = time.monotonic() + AGENTS_TIMEOUT_S
    while await redis.hlen(key) < len(agents):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker stored {await redis.hlen(key)} of {len(agents)} "
                               f"agent records within {AGENTS_TIMEOUT_S:.0f}s")
        await asyncio.sleep(0.2)
    return len(agents)


async def settle(redis: Redis, settings: Settings, records: Sequence[dict]) -> float:
    """Until the worker has stored every customer record (the background traffic's too:
    the seeding waits only for the seeded ones), so their processing is not measured as
    the background load; the seconds waited."""
    keys = Keys(settings.redis_prefix)
    started = time.monotonic()
    while True:
        pipe = redis.pipeline(transaction=False)
        for record in records:
            pipe.exists(keys.profile(record["customer_id"]))
        stored = sum(await pipe.execute())
        if stored == len(records):
            return time.monotonic() - started
        if time.monotonic() - started > SETTLE_TIMEOUT_S:
            raise TimeoutError(f"the worker stored {stored:,} of {len(records):,} customer "
                               f"records within {SETTLE_TIMEOUT_S:.0f}s")
        await asyncio.sleep(1.0)


# --- the dip ----------------------------------------------------------------------


@dataclass
class Dips:
    latencies_ms: list[float] = field(default_factory=list)
    by_kind: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    wrong: Counter[str] = field(default_factory=Counter)
    unknown: int = 0
    defaults: int = 0

    def check(self, status: int, body: bytes, ask: Ask) -> None:
        if status != 200:
            self.errors[f"HTTP {status}"] += 1
            return
        hint = orjson.loads(body)
        if hint.get("customer_id") != ask.customer_id:
            self.wrong["caller"] += 1
        if not hint.get("agents"):
            self.wrong["no agents"] += 1
        elif (ask.customer_id is not None or "intent" in ask.params) and not all(
                a.get("reasons") for a in hint["agents"]):
            # (A stranger without an intent is ranked by nothing: no reasons to give.)
            self.wrong["agent without reasons"] += 1
        self.unknown += ask.customer_id is None
        self.defaults += bool(hint.get("default"))


async def server_histogram(session: aiohttp.ClientSession) -> dict[str, float]:
    """The dashboard's own timing of the route (cumulative): sum, count, buckets."""
    async with session.get("/metrics") as reply:
        reply.raise_for_status()
        text = await reply.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "cxt_dashboard_http_request_seconds":
            continue
        for sample in family.samples:
            if sample.labels.get("route") != ROUTE:
                continue
            if sample.name.endswith("_sum"):
                out["sum"] = sample.value
            elif sample.name.endswith("_count"):
                out["count"] = sample.value
            elif sample.name.endswith("_bucket"):
                out[f"le={sample.labels['le']}"] = sample.value
    return out


async def measure_dips(run: Run, records: Sequence[dict], args: argparse.Namespace
                       ) -> dict[str, Any]:
    """Paced requests from --connections senders, each taking the next request when it
    is free and sending it when due; a request sent late (every sender busy) counts
    from when it was due, so a queue on our side is not hidden either."""
    rng = random.Random(f"routing-bench:{args.seed}")
    total = max(1, round(args.rate * args.duration))
    warm = asks_for(records, WARMUP_REQUESTS, rng)
    asks = asks_for(records, total, rng)
    dips = Dips()
    loop = asyncio.get_running_loop()
    status = StatusLine(every=2.0)
    headers = {"Authorization": f"Bearer {run.service_token}"}
    # aiohttp rather than httpx: less of the client's CPU per request, on a machine
    # where the client shares the cores with what it measures (httpx's pool also slowed
    # down badly with thousands of requests waiting for a connection).
    async with aiohttp.ClientSession(
            base_url=run.settings.dashboard_url, headers=headers,
            connector=aiohttp.TCPConnector(limit=args.connections),
            timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def get(ask: Ask) -> tuple[int, bytes]:
            async with session.get(ROUTE, params=ask.params) as reply:
                return reply.status, await reply.read()

        for ask in warm:  # connections open, the agents cached, the code paths warm
            await get(ask)
        before = await server_histogram(session)
        jobs = itertools.count()
        start = loop.time() + 0.1

        async def sender() -> None:
            for index in jobs:
                if index >= total:
                    return
                due = start + index / args.rate
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                try:
                    answer, body = await get(asks[index])
                except (aiohttp.ClientError, TimeoutError) as exc:
                    dips.errors[type(exc).__name__] += 1
                    continue
                took = (loop.time() - due) * 1000
                dips.latencies_ms.append(took)
                dips.by_kind.setdefault(asks[index].kind, []).append(took)
                dips.check(answer, body, asks[index])
                if len(dips.latencies_ms) % 500 == 0:
                    status.update(f"routing: {len(dips.latencies_ms):,}/{total:,} requests  "
                                  f"p99 so far {percentile(sorted(dips.latencies_ms), 99):.1f}"
                                  " ms")

        try:
            await asyncio.gather(*(sender() for _ in range(args.connections)))
        finally:
            status.done()
        elapsed = loop.time() - start
        after = await server_histogram(session)
    ordered = sorted(dips.latencies_ms)
    return {
        "requests": total, "answered": len(ordered), "rate_requested": args.rate,
        "elapsed_s": round(elapsed, 2),
        "requests_per_s": round(len(ordered) / elapsed, 1) if elapsed > 0 else 0.0,
        "connections": args.connections,
        **latency_summary(ordered), "p95_ms": round(percentile(ordered, 95), 2),
        "errors": dict(dips.errors), "wrong": dict(dips.wrong),
        "unknown_callers": dips.unknown, "default_answers": dips.defaults,
        "by_kind": {kind: {"requests": len(found), **latency_summary(found)}
                    for kind, found in sorted(dips.by_kind.items())},
        "server_http": server_summary(before, after),
    }


# --- the whole run ------------------------------------------------------------------


async def measure(run: Run, args: argparse.Namespace) -> dict[str, Any]:
    settings = run.settings
    await wait_ready(run)
    redis = Redis.from_url(settings.redis_url)
    producer = await start_producer(make_producer(settings))
    records = make_customers(max(args.customers, args.background_customers), args.seed)
    try:
        agents = await publish_agents(settings, redis, args.seed)
        seeded = await seed(producer, redis, settings, records, args)
        seeded["settle_s"] = round(await settle(redis, settings, records), 1)
        run.background.start()
        print(f"bench: background traffic at {args.background_rate:,.0f} events/s",
              file=sys.stderr, flush=True)
        await asyncio.sleep(BACKGROUND_SETTLE_S)
        run.background.check()
        dips = await measure_dips(run, records[:args.customers], args)
    finally:
        await producer.stop()
        await redis.aclose()
    return {"agents": agents, "seed": seeded, "routing": dips}


def run_private(args: argparse.Namespace) -> dict[str, Any]:
    from cxt.localstack import LocalStack, free_port
    from kernel.topics import ensure_topics

    env_settings = Settings.from_env()
    base = Settings(cache_dir=env_settings.cache_dir, kafka_version=env_settings.kafka_version,
                    kafka_heap=env_settings.kafka_heap)
    with tempfile.TemporaryDirectory(prefix="cxt-routing-bench-") as tmp:
        stack = LocalStack(base, Path(tmp))
        run: Run | None = None
        try:
            print("bench: starting a private Kafka + Redis ...", file=sys.stderr, flush=True)
            settings = stack.start()
            token = secrets.token_urlsafe(24)
            settings = settings.with_(dashboard_port=free_port(), api_tokens=(
                ApiToken("service", "routing-bench", token),))
            asyncio.run(ensure_topics(settings))
            env, logs = child_env(settings), Path(tmp)
            run = Run(settings, token, {},
                      worker=Child("worker", ["worker"], env, logs),
                      dashboard=Child("dashboard", ["dashboard"], env, logs),
                      background=Child("simulate", [
                          "simulate", "--rate", str(args.background_rate), "--duration", "0",
                          "--no-customers", "--customers",
                          str(max(args.customers, args.background_customers)),
                          "--seed", str(args.seed)], env, logs))
            run.worker.start()
            run.dashboard.start()
            result = asyncio.run(guarded(measure(run, args), run))
            run.background.stop(signal.SIGINT)
            return result
        except Exception:
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


# --- output --------------------------------------------------------------------------


def problems(result: dict[str, Any]) -> list[str]:
    dips = result["routing"]
    found = []
    if dips["errors"]:
        found.append(f"routing request errors: {dips['errors']}")
    if dips["wrong"]:
        found.append(f"wrong routing answers: {dips['wrong']}")
    if dips["answered"] != dips["requests"]:
        found.append(f"{dips['requests'] - dips['answered']} of {dips['requests']} requests "
                     "got no answer")
    return found


def report(result: dict[str, Any], args: argparse.Namespace) -> None:
    seeded, dips = result["seed"], result["routing"]
    print(f"routing data-dip benchmark: {result['agents']} agents, {seeded['customers']:,} "
          f"customers x {seeded['entries_per_customer']:,} entries ({seeded['open_alerts']:,} "
          f"open alerts), background {args.background_rate:,.0f} events/s")
    print(f"{'':26}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    print(f"{'GET /api/routing ms':26}" + "".join(
        f"{dips[k]:>9.2f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
        + f"   {dips['answered']:,}/{dips['requests']:,} paced at {args.rate:,.0f}/s, "
          f"{dips['unknown_callers']:,} unknown callers")
    for kind, figures in dips["by_kind"].items():
        print(f"{'  by ' + kind:26}{figures['p50_ms']:>9.2f}{'':>9}{figures['p99_ms']:>9.2f}"
              f"{figures['max_ms']:>9.2f}   {figures['requests']:,} requests")
    server = dips["server_http"]
    if server.get("count"):
        print(f"server side: HTTP handler mean {server['mean_ms']} ms (p99 <= "
              f"{server['p99_le_ms']} ms)")
    met = dips["answered"] > 0 and dips["p99_ms"] < AIM_P99_MS
    print(f"summary: routing p99 {dips['p99_ms']:.2f} ms (aim < {AIM_P99_MS:.0f} ms: "
          f"{'met' if met else 'MISSED'}); errors {sum(dips['errors'].values())}, "
          f"wrong answers {sum(dips['wrong'].values())}")
    result["aims"] = {"p99_ms": AIM_P99_MS, "met": met}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="a small run: " + ", ".join(f"{k}={v}" for k, v in QUICK.items()))
    parser.add_argument("--customers", type=int, help="customers seeded (default 2000)")
    parser.add_argument("--entries", type=int, help="timeline entries each (default 30)")
    parser.add_argument("--rate", type=float, help="routing requests per second (default 200)")
    parser.add_argument("--duration", type=float, help="seconds of requests (default 30)")
    parser.add_argument("--connections", type=int,
                        help="keep-alive connections the requests share (default 8)")
    parser.add_argument("--background-rate", type=float,
                        help="events/s of `cxt simulate` while measuring (default 1000)")
    parser.add_argument("--background-customers", type=int,
                        help="customers the background traffic is spread over; the seeded "
                             "ones are the first of them (default 20000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="also write the figures, the parameters and the machine here")
    args = parser.parse_args(argv)
    for name, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for name in ("customers", "entries", "connections"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    for name in ("rate", "duration", "background_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be above 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    return run_bench(parse_args(argv), run_private, report, problems)


if __name__ == "__main__":
    raise SystemExit(main())
