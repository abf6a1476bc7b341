"""How long a merge and an unmerge take, and how many Redis round trips they make.

    .venv/bin/python bench/merge_bench.py                 # two 10,000-entry timelines
    .venv/bin/python bench/merge_bench.py --entries 50000

Against a private redis-server: two customers with `--entries` timeline entries each
(a realistic mix of channels), then the worker's step for the customer record that
merges the first into the second, then the record that takes the merge back.  Prints
the wall time of each and the Redis commands and round trips (pipelines count once)
it took, which must not grow with the number of entries.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cxt.localstack.ports import free_port  # noqa: E402
from cxt.localstack.redis import RedisServer  # noqa: E402
from domain.rules import DEFAULT_RULES_PATH, load_rules  # noqa: E402
from kernel.settings import Settings  # noqa: E402
from store.stores import connect_redis, stores_on  # noqa: E402
from store.timeline import NewEntry  # noqa: E402
from streams.processor import Processor  # noqa: E402
from streams.records import Record  # noqa: E402

CHANNELS = ("call", "chat", "email", "survey", "social")


def _entries(cid: str, count: int) -> list[NewEntry]:
    base = int(time.time() * 1000) - count * 60_000
    out = []
    for n in range(count):
        channel = CHANNELS[n % len(CHANNELS)]
        ms = base + n * 60_000
        entry = {"event_id": f"{cid}-{n}", "customer_id": cid, "channel": channel,
                 "type": f"{channel}.ended", "occurred_at": "2026-11-20T10:00:00Z",
                 "accepted_at": "2026-11-20T10:00:01Z",
                 "payload": {"intent": "billing", "queue": "billing-uk", "agent_id": "A-1",
                             **({"score": 4} if channel == "survey" else {})},
                 "source": {"topic": f"cx.{channel}.v1", "partition": 0, "offset": n}}
        out.append(NewEntry(cid, entry["event_id"], ms, orjson.dumps(entry), entry["source"],
                            entry))  # type: ignore[arg-type]
    return out


async def _commands(redis) -> int:  # type: ignore[no-untyped-def]
    stats = await redis.info("commandstats")
    return sum(v["calls"] for v in stats.values())


async def measure(url: str, entries: int) -> None:
    settings = Settings().with_(redis_url=url, timeline_max_entries=2 * entries + 10)
    redis = connect_redis(settings)
    stores = stores_on(redis, settings)
    processor = Processor(settings, stores.timelines, stores.alerts,
                          load_rules(DEFAULT_RULES_PATH), identities=stores.identities)
    for cid in ("C-1", "C-2"):
        batch = _entries(cid, entries)
        for start in range(0, len(batch), 5000):
            await stores.timelines.add_entries(batch[start:start + 5000])
    round_trips = 0
    execute = type(redis.pipeline()).execute
    single = type(redis).execute_command

    async def counting_pipeline(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal round_trips
        round_trips += 1
        return await execute(self, *args, **kwargs)

    async def counting_command(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        nonlocal round_trips
        round_trips += 1
        return await single(self, *args, **kwargs)

    type(redis.pipeline()).execute = counting_pipeline  # type: ignore[method-assign]
    type(redis).execute_command = counting_command  # type: ignore[method-assign]
    for step, value in (("merge", {"customer_id": "C-1", "merged_into": "C-2"}),
                        ("unmerge", {"customer_id": "C-1"})):
        record = Record(settings.topics.customers, 0, 1, b"C-1", orjson.dumps(value))
        commands, round_trips = await _commands(redis), 0
        started = time.perf_counter()
        out = await processor.customers([record])
        took = time.perf_counter() - started
        trips = round_trips
        commands = await _commands(redis) - commands - 1
        sizes = [await redis.zcard(stores.keys.timeline(c)) for c in ("C-1", "C-2")]
        print(f"merge_bench: {step} of {entries:,} + {entries:,} entries: {took * 1000:.0f} ms, "
              f"{trips} round trips, {commands} Redis commands, {len(out):,} messages to "
              f"publish; now C-1 {sizes[0]:,}, C-2 {sizes[1]:,} entries", flush=True)
    await redis.aclose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=10_000,
                        help="entries in each of the two timelines (default 10000)")
    args = parser.parse_args()
    if args.entries < 1:
        parser.error("--entries must be at least 1")
    with tempfile.TemporaryDirectory(prefix="cxt-merge-bench-") as tmp:
        server = RedisServer(free_port(), Path(tmp) / "redis").start()
        try:
            asyncio.run(measure(server.url, args.entries))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
