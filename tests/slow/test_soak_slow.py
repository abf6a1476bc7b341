"""Slow suite: ten minutes at a steady 1,000 events/s, sampled every minute.

Runs with `./dev test-slow` (and in CI).  Timelines keep only
`MAX_ENTRIES` entries, and the traffic sends each customer several times that
within the first minute, so retention trims all the time.  Each minute the
worker's resident memory (/proc), the batch consumer group's lag (committed vs
end offsets) and Redis's memory are sampled; after a two-minute warm-up none of
them may keep growing:

* worker RSS: the last sample at most 20% above the first after warm-up.  The
  worker keeps no per-event state, so a leak of even 100 bytes per event would
  be 60 MB over the 600,000 events, several times that bound;
* lag: at most 5 s of traffic at every sample after warm-up, not rising from
  sample to sample throughout, and 0 once traffic stops;
* Redis: every timeline at most MAX_ENTRIES long with no entry left behind in
  its hash, the timelines' memory flat (within 15%), and Redis's whole memory
  growing by no more than its keys do (16 MB allowance for the allocator): the
  rest of the growth is what is kept on purpose for days (alerts, the survey
  counters' seen-sets), recorded in the samples as `other_bytes`.

CXT_SOAK_SECONDS shortens the run when trying the test out; the samples go to
CXT_TEST_ARTIFACTS/soak.json.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import time
from pathlib import Path

import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from cxt.traffic import make_customers
from tests.support.faults import ARTIFACTS, GroupOffsets, SteadySender
from tests.support.helpers import create_topics, isolated, produce
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.slow

RATE = 1000
SOAK_S = int(os.environ.get("CXT_SOAK_SECONDS", "600"))
SAMPLE_EVERY_S = 60 if SOAK_S >= 300 else max(10, SOAK_S // 10)
WARM_UP_SAMPLES = 2
CUSTOMERS = 2000
MAX_ENTRIES = 20  # 1,000/s over 2,000 customers: a customer's 20th event after ~40 s
RSS_GROWTH = 0.20
TIMELINE_GROWTH = 0.15
REDIS_SLACK = 16 << 20


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def redis_figures(client: redis.Redis, prefix: str) -> dict[str, int]:
    """Memory and sizes: the timelines' keys apart from the rest of the prefix's keys."""
    figures = {"used_memory": int(client.info("memory")["used_memory"]), "timelines": 0,
               "timeline_entries": 0, "longest_timeline": 0, "orphans": 0,
               "timeline_bytes": 0, "other_keys": 0, "other_bytes": 0}
    keys = [k.decode() for k in client.scan_iter(f"{prefix}:*", count=2000)]
    timeline_keys = [k for k in keys if k.endswith((":tl", ":ev"))]
    other = [k for k in keys if not k.endswith((":tl", ":ev"))]
    pipe = client.pipeline(transaction=False)
    for key in timeline_keys + other:
        pipe.memory_usage(key)
    sizes = dict(zip(timeline_keys + other, pipe.execute(), strict=True))
    pipe = client.pipeline(transaction=False)
    tls = [k for k in timeline_keys if k.endswith(":tl")]
    for key in tls:
        pipe.zcard(key)
        pipe.hlen(key[:-3] + ":ev")
    replies = pipe.execute()
    for zcard, hlen in zip(replies[::2], replies[1::2], strict=True):
        figures["timelines"] += 1
        figures["timeline_entries"] += zcard
        figures["longest_timeline"] = max(figures["longest_timeline"], zcard)
        figures["orphans"] += abs(hlen - zcard)
    figures["timeline_bytes"] = sum(sizes[k] or 0 for k in timeline_keys)
    figures["other_keys"] = len(other)
    figures["other_bytes"] = sum(sizes[k] or 0 for k in other)
    return figures


def test_ten_minutes_at_a_steady_rate_grow_nothing_beyond_retention(stack: LocalStack,
                                                                    tmp_path: Path) -> None:
    settings = isolated(stack.settings, batch_size=500, timeline_max_entries=MAX_ENTRIES)
    asyncio.run(create_topics(settings))
    customers = make_customers(CUSTOMERS, seed=41)
    asyncio.run(produce(settings, settings.topics.customers,
                        [(c["customer_id"].encode(), orjson.dumps(c)) for c in customers]))
    client = redis.Redis.from_url(settings.redis_url)
    offsets = GroupOffsets(settings)
    worker = WorkerProcess(settings, tmp_path).start()
    sender = SteadySender(settings, customers, rate=RATE, seed=41, remember=False)
    samples: list[dict] = []
    try:
        sender.start()
        started = time.monotonic()
        for n in range(1, SOAK_S // SAMPLE_EVERY_S + 1):
            while time.monotonic() < started + n * SAMPLE_EVERY_S:
                worker.assert_alive()
                sender.assert_running()
                time.sleep(1)
            assert worker.proc is not None
            lag = offsets.lag()
            assert lag is not None, "the broker did not answer"
            samples.append({"t_s": round(time.monotonic() - started), "sent": sender.sent,
                            "worker_rss": rss_bytes(worker.proc.pid), "lag": lag,
                            **redis_figures(client, settings.redis_prefix)})
        sender.stop()
        drain_started = time.monotonic()
        while (lag := offsets.lag()) != 0:
            worker.assert_alive()
            assert time.monotonic() < drain_started + 120, f"lag still {lag} after 120 s"
            time.sleep(0.5)
        drained_s = time.monotonic() - drain_started

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "soak.json").write_text(json.dumps({
            "rate_events_per_s": RATE, "seconds": SOAK_S, "events_sent": sender.sent,
            "customers": CUSTOMERS, "timeline_max_entries": MAX_ENTRIES,
            "drained_s": round(drained_s, 1), "samples": samples}, indent=2) + "\n")
        first, last = samples[WARM_UP_SAMPLES - 1], samples[-1]
        print(f"\nsoak: {sender.sent} messages in {SOAK_S} s; worker RSS "
              f"{first['worker_rss'] >> 20} -> {last['worker_rss'] >> 20} MB, lag per minute "
              f"{[s['lag'] for s in samples]}, Redis {first['used_memory'] >> 20} -> "
              f"{last['used_memory'] >> 20} MB, drained in {drained_s:.1f} s")

        # The rate was held (the sender keeps pace or catches up within a second).
        assert sender.sent >= RATE * SOAK_S * 0.95
        # Retention: every customer's timeline is full and trimmed, nothing left behind.
        assert last["longest_timeline"] == MAX_ENTRIES
        assert last["timeline_entries"] >= 0.9 * CUSTOMERS * MAX_ENTRIES
        assert last["timeline_entries"] <= last["timelines"] * MAX_ENTRIES
        assert last["orphans"] == 0
        assert last["timeline_bytes"] <= first["timeline_bytes"] * (1 + TIMELINE_GROWTH)
        # Redis as a whole grows by no more than its keys do (no script cache, buffer or
        # anything else building up); of the keys, only those kept on purpose for days.
        keys_growth = max(0, last["timeline_bytes"] - first["timeline_bytes"]) + max(
            0, last["other_bytes"] - first["other_bytes"])
        assert last["used_memory"] - first["used_memory"] <= keys_growth + REDIS_SLACK
        # The worker's memory.
        assert last["worker_rss"] <= first["worker_rss"] * (1 + RSS_GROWTH)
        # Lag: small, and not rising minute after minute.
        after = [s["lag"] for s in samples[WARM_UP_SAMPLES - 1:]]
        assert max(after) <= 5 * RATE, after
        assert not all(b > a for a, b in itertools.pairwise(after)), after
    finally:
        with contextlib.suppress(AssertionError, RuntimeError):  # RuntimeError: never started
            sender.stop(timeout=60)
        worker.stop()
        client.close()
