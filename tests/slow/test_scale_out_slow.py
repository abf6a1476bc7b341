"""Slow suite: several workers in one group on 12 partitions, joining and leaving.

Traffic flows at a steady rate throughout while workers join (one, then two
more) and leave (one stopped cleanly, one killed), and a fourth joins late.
The exactly-once checks of the fault test then hold as they do for one worker:
nothing lost, nothing doubled, occurred_at order, dead letters with their
reason, one alert per bottom-2-box survey.  The figures go to
CXT_TEST_ARTIFACTS/scale_out.json for the README.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from cxt.traffic import make_customers
from tests.support.faults import (
    ARTIFACTS,
    RECOVERY_TIMEOUT_S,
    GroupOffsets,
    SteadySender,
    assert_exactly_once,
    wait_for,
)
from tests.support.helpers import create_topics, isolated, produce
from tests.support.processes import WorkerProcess

pytestmark = pytest.mark.slow

PARTITIONS = 12
RATE = 600
CUSTOMERS = 300
INBOUND_PARTITIONS = 5 * PARTITIONS


def _assigned(worker: WorkerProcess) -> list[int]:
    """The partition counts the worker's inbound consumer was assigned, in turn."""
    log = worker.log_path.read_text(errors="replace")
    return [int(n) for n in re.findall(r"interactions: assigned (\d+) partition", log)]


def test_workers_joining_and_leaving_lose_and_double_nothing(stack: LocalStack,
                                                            tmp_path: Path) -> None:
    settings = isolated(stack.settings, batch_size=500, timeline_max_entries=100_000)
    settings = replace(settings, topics=replace(settings.topics, partitions=PARTITIONS))
    asyncio.run(create_topics(settings))
    customers = make_customers(CUSTOMERS, seed=31)
    asyncio.run(produce(settings, settings.topics.customers,
                        [(c["customer_id"].encode(), orjson.dumps(c)) for c in customers]))
    client = redis.Redis.from_url(settings.redis_url)
    offsets = GroupOffsets(settings)
    workers = [WorkerProcess(settings, tmp_path).start()]
    wait_for(lambda: sum(1 for _ in client.scan_iter(f"{settings.redis_prefix}:*:profile",
                                                     count=1000)) == CUSTOMERS,
             120, "customer records stored", workers[0].assert_alive)
    sender = SteadySender(settings, customers, rate=RATE, seed=31).start()
    started = time.monotonic()
    steps: list[dict] = []

    def workers_alive() -> None:
        for worker in workers:
            worker.assert_alive()

    def alive() -> None:
        sender.assert_running()
        workers_alive()

    def settle(what: str) -> None:
        took = offsets.wait_caught_up(time.monotonic(), RECOVERY_TIMEOUT_S, alive)
        steps.append({"step": what, "workers": len(workers), "caught_up_s": round(took, 1)})

    try:
        settle("one worker")
        for _ in range(2):  # two more join
            time.sleep(3)
            workers.append(WorkerProcess(settings, tmp_path).start())
            settle("a worker joined")
        shared = [w for w in workers if _assigned(w) and 0 < _assigned(w)[-1]
                  < INBOUND_PARTITIONS]
        assert len(shared) >= 2, [(_assigned(w), w.log()[-2000:]) for w in workers]

        time.sleep(3)
        leaving = workers.pop(0)
        leaving.stop()  # a clean leave (SIGTERM)
        settle("a worker left cleanly")
        time.sleep(3)
        workers.pop(0).kill()  # a crash: its partitions move after the session timeout
        settle("a worker was killed")
        time.sleep(3)
        workers.append(WorkerProcess(settings, tmp_path).start())
        settle("a worker joined late")
        time.sleep(3)
        sender.stop()
        traffic_s = time.monotonic() - started
        wait_for(lambda: offsets.lag() == 0, RECOVERY_TIMEOUT_S, "final catch-up",
                 workers_alive)

        figures = assert_exactly_once(settings, client, sender)
        figures |= {"partitions_per_topic": PARTITIONS, "rate_events_per_s": RATE,
                    "traffic_s": round(traffic_s), "steps": steps}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "scale_out.json").write_text(json.dumps(figures, indent=2) + "\n")
        print(f"\nscale-out: {figures}")
    finally:
        with contextlib.suppress(AssertionError):
            sender.stop(timeout=60)
        for worker in workers:
            worker.stop()
        client.close()
