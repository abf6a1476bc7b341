"""Slow suite: `cxt deadletters replay` of 6,000 dead letters killed half-way and run
again: each dead letter is replayed at most once by the command, and each event is
stored exactly once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.deadletters import SMALL, dead_lettered
from tests.support.helpers import REPO, create_topics, envelope, eventually, isolated, settings_env
from tests.support.processes import WorkerProcess, run_cxt

pytestmark = pytest.mark.slow


@pytest.fixture()
def settings(stack: LocalStack) -> Settings:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    return settings


def test_replay_sends_each_dead_letter_once_even_when_killed(settings: Settings,
                                                            tmp_path: Path) -> None:
    customers = [f"C-{uuid.uuid4().hex[:8]}" for _ in range(200)]
    events = [envelope("call", customers[i % len(customers)], call_id=f"K-{i}",
                       note="x" * SMALL) for i in range(6000)]
    dead_lettered(settings, events, tmp_path)
    client = redis.Redis.from_url(settings.redis_url)
    marks = f"{settings.redis_prefix}:{{dl:{settings.topics.deadletter}}}:replayed"
    worker = WorkerProcess(settings, tmp_path).start()  # the fix: the default size limit
    try:
        dry = run_cxt(settings, "deadletters", "replay", "--dry-run")
        assert dry.returncode == 0 and "would have replayed 6000" in dry.stdout, dry.stdout
        assert client.hlen(marks) == 0

        # Killed once some chunks are marked and before all are.
        replaying = subprocess.Popen(
            [sys.executable, "-m", "cxt", "deadletters", "replay", "--chunk", "25"],
            cwd=REPO, env=settings_env(settings), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while client.hlen(marks) == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        replaying.send_signal(signal.SIGKILL)
        replaying.communicate(timeout=30)
        halfway = client.hlen(marks)
        assert 0 < halfway < len(events), halfway

        again = run_cxt(settings, "deadletters", "replay", timeout=120)
        assert again.returncode == 0, again.stderr
        assert f"skipped {halfway} replayed before" in again.stdout, again.stdout
        assert client.hlen(marks) == len(events)
        third = run_cxt(settings, "deadletters", "replay")
        assert f"replayed 0, skipped {len(events)} replayed before" in third.stdout

        def stored() -> int:
            return sum(client.zcard(f"{settings.redis_prefix}:{{{c}}}:tl") for c in customers)
        assert asyncio.run(eventually(lambda: stored() == len(events), timeout=90,
                                      interval=1)), (stored(), worker.log())
        time.sleep(2)  # a duplicate still on its way would show up now
        assert stored() == len(events)
    finally:
        worker.stop()
        client.close()
