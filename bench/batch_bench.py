"""The worker's batch step in-process: validate, resolve, score, store, detect, alert.

    .venv/bin/python bench/batch_bench.py                      # this checkout
    .venv/bin/python bench/batch_bench.py --checkout /tmp/before   # another commit's code
    .venv/bin/python bench/batch_bench.py --batch 25           # batches as at ~1,000 events/s

`./dev bench` measures whole workers beside Kafka, and on a shared 2-core machine
its runs swing by 10-20%; this is the steadier figure for one change.  The
benchmark's workload (bench/compare.py: 100,000 customers, the channel mix, the
identity index) is made once with this checkout's generator and written to a file,
then `streams.processor.Processor.interactions` of the checkout measured runs it in
batches of 2,000 (a busy worker's; --batch sets it: at ordinary rates a worker gets a
few dozen at a time, and the cost per batch shows) against a private redis-server,
with the worker's GC settings.
Printed per run and as the least of the runs: worker CPU, Redis CPU (INFO cpu) and
wall time per event, and Redis commands per event (INFO commandstats, scripts'
commands included).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
BATCH = 2000


def make_workload(path: Path, events: int) -> None:
    """The bench workload's events and identity index, one JSON array per line."""
    sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
    import compare  # bench/compare.py

    from kernel.settings import Settings

    workload = compare.Workload(compare.DEFAULTS["customers"], 7)  # compare's defaults
    with path.open("wb") as out:
        out.write(orjson.dumps(workload.identities) + b"\n")
        for topic, key, value, _ in workload.events(events, 0, Settings()):
            value = value.replace(compare.TEMPLATE_RUN.encode(), b"BATCHRUN")
            out.write(orjson.dumps([topic, None if key is None else key.decode(),
                                    value.decode()]) + b"\n")


async def measure(path: Path, redis_url: str, profile: Path | None = None,
                  batch: int = BATCH) -> dict[str, float]:
    """One run of the checkout on the sys.path (see main); with `profile`, the measured
    loop's cProfile statistics are written there (and its figures are not comparable)."""
    from domain.rules import load_rules
    from kernel.settings import Settings
    from store.keys import Keys
    from store.stores import connect_redis, stores_on
    from streams.processor import Processor
    from streams.records import Record

    lines = path.read_bytes().splitlines()
    identities = orjson.loads(lines[0])
    records = [Record(topic, 0, n, None if key is None else key.encode(), value.encode())
               for n, (topic, key, value) in enumerate(map(orjson.loads, lines[1:]))]
    settings = Settings().with_(redis_url=redis_url)
    redis = connect_redis(settings)
    await redis.flushall()
    keys = Keys(settings.redis_prefix)
    for start in range(0, len(identities), 5000):
        await redis.mset({keys.identity(k): c for k, c in identities[start:start + 5000]})
    stores = stores_on(redis, settings)
    extra = {}
    if (Path(sys.path[0]) / "domain" / "signal_config.py").exists():  # from issue 14 on
        from domain.signal_config import load_signals
        extra = {"signals": load_signals(settings.signals_path),
                 "negatives": stores.negatives, "reasons": stores.contact_reasons}
    processor = Processor(settings, stores.timelines, stores.alerts,
                          load_rules(settings.alert_rules_path), **extra)
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)  # as streams/worker.py
    await processor.interactions(records[:BATCH])  # warm: scripts loaded, caches filled
    records = records[BATCH:]
    await redis.config_resetstat()
    before = await redis.info("cpu")
    profiler = None
    if profile is not None:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    cpu, wall = time.process_time(), time.perf_counter()
    for start in range(0, len(records), batch):
        await processor.interactions(records[start:start + batch])
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile))
    after = await redis.info("cpu")
    commands = sum(v["calls"] for v in (await redis.info("commandstats")).values())
    await redis.aclose()
    n = len(records)
    redis_s = (after["used_cpu_user"] + after["used_cpu_sys"]
               - before["used_cpu_user"] - before["used_cpu_sys"])
    return {"worker_us": 1e6 * cpu / n, "redis_us": 1e6 * redis_s / n,
            "wall_us": 1e6 * wall / n, "redis_commands": commands / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=ROOT,
                        help="the code to measure (default: this checkout)")
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=BATCH,
                        help=f"events per batch (default {BATCH}, as in a busy worker; a "
                             "worker at ordinary rates gets a few dozen at a time)")
    parser.add_argument("--profile", type=Path, metavar="OUT",
                        help="write the first run's cProfile statistics to OUT (that run's "
                             "figures are inflated by the profiler)")
    parser.add_argument("--measure", nargs=2, metavar=("WORKLOAD", "REDIS_URL"),
                        help=argparse.SUPPRESS)  # the child's part
    args = parser.parse_args()
    if args.measure:
        sys.path.insert(0, str(args.checkout.resolve()))
        figures = asyncio.run(measure(Path(args.measure[0]), args.measure[1], args.profile,
                                      args.batch))
        print(orjson.dumps(figures).decode())
        return 0
    if args.events <= BATCH or args.runs < 1 or args.batch < 1:
        parser.error(f"--events must be more than {BATCH}, --runs and --batch at least 1")
    if not (args.checkout / "streams" / "processor.py").exists():
        parser.error(f"--checkout {args.checkout}: no streams/processor.py there")

    sys.path.insert(0, str(ROOT))
    from cxt.localstack.ports import free_port
    from cxt.localstack.redis import RedisServer

    with tempfile.TemporaryDirectory(prefix="cxt-batch-bench-") as tmp:
        workload = Path(tmp) / "workload.jsonl"
        print(f"batch_bench: making {args.events:,} bench events ...", flush=True)
        make_workload(workload, args.events)
        server = RedisServer(free_port(), Path(tmp) / "redis").start()
        results = []
        try:
            env = {**os.environ, "PYTHONPATH": str(args.checkout.resolve())}
            for run in range(1, args.runs + 1):
                profile = ([] if args.profile is None or run > 1
                           else ["--profile", str(args.profile.resolve())])
                done = subprocess.run(
                    [sys.executable, __file__, "--checkout", str(args.checkout), "--measure",
                     str(workload), server.url, "--batch", str(args.batch), *profile],
                    env=env, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(done.stderr, file=sys.stderr)
                    return 1
                result = orjson.loads(done.stdout.splitlines()[-1])
                results.append(result)
                print(f"batch_bench: run {run}/{args.runs}: " + _line(result), flush=True)
        finally:
            server.stop()
    least = {k: min(r[k] for r in results) for k in results[0]}
    print(f"batch_bench: {args.checkout}: least of {args.runs}: " + _line(least))
    return 0


def _line(result: dict[str, float]) -> str:
    return (f"worker {result['worker_us']:.1f} us, Redis {result['redis_us']:.1f} us, "
            f"wall {result['wall_us']:.1f} us per event, "
            f"{result['redis_commands']:.2f} Redis commands per event")


if __name__ == "__main__":
    sys.exit(main())
