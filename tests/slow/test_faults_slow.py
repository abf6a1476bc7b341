"""Slow suite: faults under steady traffic, on a private broker and Redis.

Runs with `./dev test-slow` (and in CI).  A sender keeps traffic flowing at a
steady rate (about 2% of it bad records) the whole time while, in turn:

* the worker is killed with SIGKILL ten times, at random moments, and restarted;
* the Kafka broker is stopped and started again (same port, same data);
* Redis is stopped and started again (append-only file on, so its data stays).

While Redis is down the worker must stay alive and commit nothing
(backpressure); after each fault the time until the group has committed
everything sent before the restart is the recovery time.  Once traffic stops,
every good event is in its customer's timeline exactly once at its occurred_at,
every bad one is on the dead-letter topic with its reason, and every
bottom-2-box survey has exactly one alert.  The figures go to
CXT_TEST_ARTIFACTS/faults.json (default test-artifacts/) for the README.

`SteadySender` and `GroupOffsets` are shared with the soak test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from pathlib import Path

import orjson
import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from cxt.localstack import LocalStack
from cxt.traffic import make_customers
from kernel.settings import Settings
from tests.support.faults import (
    ARTIFACTS,
    RECOVERY_TIMEOUT_S,
    GroupOffsets,
    SteadySender,
    assert_exactly_once,
    timelines,
    wait_for,
)
from tests.support.helpers import create_topics, isolated, produce
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.slow

RATE = 500  # events/s, throughout
KILLS = 10
CUSTOMERS = 1000
REDIS_DOWN_S = 10  # how long Redis stays down once the commits have settled


@pytest.fixture
def private_stack(tmp_path: Path):
    """A broker and a Redis (append-only file on) of this test's own: it stops them."""
    local = LocalStack(Settings(cache_dir=Settings.from_env().cache_dir), tmp_path / "stack",
                       redis_appendonly=True)
    local.start()
    try:
        yield local
    finally:
        local.stop()


def test_faults_under_steady_traffic_lose_and_double_nothing(private_stack: LocalStack,
                                                             tmp_path: Path) -> None:
    stack = private_stack
    settings = isolated(stack.settings, batch_size=500, timeline_max_entries=100_000)
    asyncio.run(create_topics(settings))
    customers = make_customers(CUSTOMERS, seed=23)
    asyncio.run(produce(settings, settings.topics.customers,
                        [(c["customer_id"].encode(), orjson.dumps(c)) for c in customers]))
    # Retries: the same client goes on working once Redis is back.
    client = redis.Redis.from_url(settings.redis_url, retry=Retry(ExponentialBackoff(), 5),
                                  retry_on_error=[redis.ConnectionError])
    offsets = GroupOffsets(settings)
    rng = random.Random(7)
    recovery: dict[str, list[float]] = {"worker_sigkill": [], "broker_restart": [],
                                        "redis_restart": []}
    worker = WorkerProcess(settings, tmp_path).start()
    # Customer records first, so identity-only events find their customer (a late one
    # would be linked from a provisional profile instead; not what this test is about).
    wait_for(lambda: sum(1 for _ in client.scan_iter(f"{settings.redis_prefix}:*:profile",
                                                  count=1000)) == CUSTOMERS,
          120, "customer records stored", worker.assert_alive)
    sender = SteadySender(settings, customers, rate=RATE, seed=23).start()
    started = time.monotonic()

    def alive() -> None:
        worker.assert_alive()
        sender.assert_running()

    try:
        offsets.wait_caught_up(time.monotonic(), RECOVERY_TIMEOUT_S, alive)

        # 1. SIGKILL at random moments, each once the previous restart has caught up.
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 4.0))
            alive()
            worker.kill()
            worker = WorkerProcess(settings, tmp_path).start()
            recovery["worker_sigkill"].append(round(offsets.wait_caught_up(
                time.monotonic(), RECOVERY_TIMEOUT_S, alive), 1))

        # 2. The broker stopped and started again on its port and data directory.
        time.sleep(rng.uniform(0.5, 4.0))
        assert stack.broker is not None
        down = time.monotonic()
        stack.broker.stop()
        time.sleep(5)  # down for a while under traffic (the fault itself, not an assertion)
        stack.broker.start(timeout=120)
        downtime = {"broker_restart": round(time.monotonic() - down, 1)}
        recovery["broker_restart"].append(round(offsets.wait_caught_up(
            time.monotonic(), RECOVERY_TIMEOUT_S, alive), 1))

        # 3. Redis stopped: the worker waits, alive, and commits nothing; then catches up.
        assert stack.redis is not None
        stored_before = sum(len(t) for t in timelines(client, settings.redis_prefix).values())
        down = time.monotonic()
        stack.redis.stop()
        # A batch whose Redis write finished before the stop may still commit: wait
        # for the commits to stand still, then watch them stay put.
        settled: list = []

        def commits_stand_still() -> bool:
            read = offsets.read()
            settled.append(read and read[0])
            return len(settled) >= 6 and settled[-1] is not None and all(
                s == settled[-1] for s in settled[-6:])
        wait_for(commits_stand_still, 60, "commits stopping while Redis is down", alive)
        baseline = settled[-1]
        ends_then = offsets.read()
        assert ends_then is not None
        watch_until = time.monotonic() + REDIS_DOWN_S
        while time.monotonic() < watch_until:
            alive()  # no crash (loop): the same process all along
            read = offsets.read()
            assert read is None or read[0] == baseline, "committed while Redis was down"
            time.sleep(0.5)
        ends_now = offsets.read()
        assert ends_now is not None
        assert sum(ends_now[1].values()) > sum(ends_then[1].values()), "traffic stopped"
        assert "Redis write failed" in worker.log_path.read_text(errors="replace")
        stack.redis.start()
        restarted = time.monotonic()
        downtime["redis_restart"] = round(restarted - down, 1)
        # Persistence: everything stored before the stop is still there.
        assert sum(len(t) for t in timelines(client, settings.redis_prefix).values()) \
            >= stored_before
        recovery["redis_restart"].append(round(offsets.wait_caught_up(
            restarted, RECOVERY_TIMEOUT_S, alive), 1))

        time.sleep(rng.uniform(2, 5))
        sender.stop()
        traffic_s = time.monotonic() - started
        # Everything committed: from now on nothing can be redelivered.
        wait_for(lambda: offsets.lag() == 0, RECOVERY_TIMEOUT_S, "final catch-up",
              worker.assert_alive)
        worker.assert_alive()

        checked = assert_exactly_once(settings, client, sender)

        figures = {
            "faults": {"worker_sigkill": KILLS, "broker_restart": 1, "redis_restart": 1},
            "rate_events_per_s": RATE, "traffic_s": round(traffic_s),
            **checked, "recovery_s": recovery, "downtime_s": downtime,
            "redis_down_commits_held_s": REDIS_DOWN_S,
        }
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "faults.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nfaults: {KILLS} SIGKILLs + broker restart + Redis restart at {RATE}/s; "
              f"{checked['events_checked']} events, {checked['bad_records_checked']} bad, "
              f"{checked['alerts_checked']} alerts checked; "
              f"lost 0, doubled 0; recovery s: {recovery}")
    finally:
        with contextlib.suppress(AssertionError):
            sender.stop(timeout=60)
        worker.stop()
        client.close()
