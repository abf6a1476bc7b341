"""The agent context's CPU in-process: what one read costs the dashboard, without HTTP.

    .venv/bin/python bench/context_cpu.py                   # 20 customers x 1,000 entries
    .venv/bin/python bench/context_cpu.py --profile OUT     # and the first run's cProfile
    .venv/bin/python bench/context_cpu.py --survey-scan     # the survey index against a scan

`bench/context_bench.py` measures the context read end to end beside a busy worker,
Kafka and Redis on the same two cores, and its p99 swings with whatever else runs;
this is the steadier figure for one change to the read (store.digest, dashboard.*).
It starts a private redis-server, seeds --customers customer records and --entries
timeline entries each through the worker's own `Processor` (context_bench's
generator: calls, chats, e-mails, surveys and social posts over 300 days, two
bottom-2-box surveys each, so open alerts exist and the negative-interaction
detection raises its own), then times `dashboard.agent_view.agent_context` for
intent "billing" on --reads random seeded customers, with the dashboard's GC
settings.  Printed per run and as the least of the runs: the process's CPU, Redis's
CPU (INFO cpu) and the wall time per context, and how many entries a read parsed.

--survey-scan: each run alternates blocks of 100 reads with the survey index's
completeness mark removed (the digest scans the entries for surveys, as for a
timeline stored before the index existed) and restored, and prints both, so the
machine's drift from one minute to the next falls on both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import context_bench  # noqa: E402  (bench/context_bench.py: the seeding generator)

from cxt.localstack.ports import free_port  # noqa: E402
from cxt.localstack.redis import RedisServer  # noqa: E402

BATCH = 2000
BLOCK = 100  # reads per block of --survey-scan


async def seed(url: str, customers: int, entries: int) -> tuple[Any, list[str]]:
    """The dashboard's services over a Redis holding the seeded timelines, and the ids."""
    from dashboard.metrics import DashboardMetrics
    from dashboard.prompts import load_agent_config
    from domain.rules import load_rules
    from domain.signal_config import load_signals
    from kernel.settings import Settings
    from store.stores import connect_redis, stores_on
    from streams.processor import Processor
    from streams.records import Record

    settings = Settings().with_(redis_url=url)
    stores = stores_on(connect_redis(settings), settings)
    await stores.redis.flushall()
    processor = Processor(settings, stores.timelines, stores.alerts,
                          load_rules(settings.alert_rules_path),
                          signals=load_signals(settings.signals_path),
                          negatives=stores.negatives, reasons=stores.contact_reasons)
    records = context_bench.make_customers(customers, 7)[:customers]
    await processor.customers([
        Record(settings.topics.customers, 0, n, r["customer_id"].encode(), orjson.dumps(r))
        for n, r in enumerate(records)])
    now = datetime.now(UTC)
    events: list[Record] = []
    for record in records:
        envelopes, _ = context_bench.customer_entries(record, entries, 7, now)
        for envelope in envelopes:
            topic = settings.topics.for_channel(envelope["type"].split(".", 1)[0])
            events.append(Record(topic, 0, len(events), record["customer_id"].encode(),
                                 orjson.dumps(envelope)))
    for start in range(0, len(events), BATCH):
        await processor.interactions(events[start:start + BATCH])
        print(f"context_cpu: seeded {min(start + BATCH, len(events)):,}/{len(events):,} "
              "entries", end="\r", flush=True)
    print()
    # What agent_context asks of dashboard.services.Services.
    services = SimpleNamespace(
        agent_config=load_agent_config(settings.agent_context_path), timelines=stores.timelines,
        alerts=stores.alerts, self_service=stores.self_service, identities=stores.identities,
        metrics=DashboardMetrics())
    return services, [r["customer_id"] for r in records]


async def measure(url: str, args: argparse.Namespace) -> list[dict[str, float]]:
    from dashboard.agent_view import agent_context

    services, ids = await seed(url, args.customers, args.entries)
    digests = services.timelines.digest
    read, rows = digests.read_with_alerts, []

    async def noting(*a: Any, **k: Any) -> Any:
        digest, alerts = await read(*a, **k)
        rows.append(len(digest.rows))
        return digest, alerts

    digests.read_with_alerts = noting
    for cid in ids:  # warm: scripts loaded, patterns compiled; and what a read parses
        context = await agent_context(services, cid, intent="billing")
    digests.read_with_alerts = read
    parsed = sum(rows) / max(1, len(rows))
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)  # as dashboard/server.py
    if args.survey_scan:
        return await _survey_scan(services, ids, args)
    results = []
    for run in range(1, args.runs + 1):
        order = [random.Random(run).choice(ids) for _ in range(args.reads)]
        profiler = None
        if args.profile is not None and run == 1:
            import cProfile
            profiler = cProfile.Profile()
            profiler.enable()
        redis_before = await _redis_cpu(services)
        cpu, wall = time.process_time(), time.perf_counter()
        for cid in order:
            await agent_context(services, cid, intent="billing")
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        redis_s = await _redis_cpu(services) - redis_before
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(args.profile))
        result = {"cpu_ms": 1000 * cpu / args.reads, "wall_ms": 1000 * wall / args.reads,
                  "redis_ms": 1000 * redis_s / args.reads}
        results.append(result)
        print(f"context_cpu: run {run}/{args.runs}: {_line(result)}"
              + (" (profiled)" if profiler is not None else ""), flush=True)
    await services.timelines.redis.aclose()
    print(f"context_cpu: a context shows {len(context['events'])} events of about "
          f"{context['counts']['total']:,} contacts; a read parses {parsed:,.0f} entries "
          f"in {len(rows) / max(1, len(ids)):.2f} digest calls (mean of the warm-up)")
    return results


async def _survey_scan(services: Any, ids: list[str], args: argparse.Namespace
                       ) -> list[dict[str, float]]:
    from dashboard.agent_view import agent_context
    from store.digest import SURVEYS_COMPLETE

    redis, keys = services.timelines.redis, services.timelines.keys
    results = []
    for run in range(1, args.runs + 1):
        rng = random.Random(run)
        spent = {True: [0.0, 0.0, 0], False: [0.0, 0.0, 0]}  # indexed -> cpu, redis, reads
        for block in range(max(2, args.reads // BLOCK)):
            indexed = block % 2 == 0
            for cid in ids:
                if indexed:
                    await redis.zadd(keys.survey_index(cid), {SURVEYS_COMPLETE: float("inf")})
                else:
                    await redis.zrem(keys.survey_index(cid), SURVEYS_COMPLETE)
            order = [rng.choice(ids) for _ in range(BLOCK)]
            redis_before, cpu = await _redis_cpu(services), time.process_time()
            for cid in order:
                await agent_context(services, cid, intent="billing")
            cpu = time.process_time() - cpu
            totals = spent[indexed]
            totals[0] += cpu
            totals[1] += await _redis_cpu(services) - redis_before
            totals[2] += BLOCK
        result = {}
        for indexed, (cpu, redis_s, reads) in spent.items():
            name = "index" if indexed else "scan"
            result |= {f"{name}_cpu_ms": 1000 * cpu / reads,
                       f"{name}_redis_ms": 1000 * redis_s / reads}
        results.append(result)
        print(f"context_cpu: run {run}/{args.runs}: {_scan_line(result)}", flush=True)
    await redis.aclose()
    return results


def _scan_line(result: dict[str, float]) -> str:
    return " / ".join(f"{name}: CPU {result[name + '_cpu_ms']:.2f} ms, Redis "
                      f"{result[name + '_redis_ms']:.2f} ms per context"
                      for name in ("scan", "index"))


async def _redis_cpu(services: Any) -> float:
    info = await services.timelines.redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _line(result: dict[str, float]) -> str:
    return (f"CPU {result['cpu_ms']:.2f} ms, Redis {result['redis_ms']:.2f} ms, "
            f"wall {result['wall_ms']:.2f} ms per context")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20)
    parser.add_argument("--entries", type=int, default=1000, help="timeline entries each")
    parser.add_argument("--reads", type=int, default=2000, help="contexts read per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", type=Path, metavar="OUT",
                        help="write the first run's cProfile statistics to OUT (that run's "
                             "figures are inflated by the profiler)")
    parser.add_argument("--survey-scan", action="store_true",
                        help="alternate reads with and without the survey index (see above)")
    args = parser.parse_args()
    if min(args.customers, args.entries, args.reads, args.runs) < 1:
        parser.error("--customers, --entries, --reads and --runs must be at least 1")
    with tempfile.TemporaryDirectory(prefix="cxt-context-cpu-") as tmp:
        server = RedisServer(free_port(), Path(tmp) / "redis").start()
        try:
            results = asyncio.run(measure(server.url, args))
        finally:
            server.stop()
    least = {k: min(r[k] for r in results) for k in results[0]}
    line = _scan_line if args.survey_scan else _line
    print(f"context_cpu: least of {args.runs}: {line(least)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
