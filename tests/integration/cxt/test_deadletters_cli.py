"""`cxt deadletters list|show|replay` against a real worker, Kafka and Redis: records a
worker rejected (too large for its limit, broken JSON) are listed and filtered; after the
"fix" (a worker with the default limit) they are replayed into the timelines, each once,
even when the replay is killed half-way and run again."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import redis

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.helpers import (
    REPO,
    create_topics,
    envelope,
    eventually,
    isolated,
    produce,
    produce_events,
    settings_env,
)
from tests.support.processes import WorkerProcess, run_cxt

SMALL = 120  # bytes: a worker with this limit rejects every envelope below as too_large


def _listed(settings: Settings, *args: str) -> list[dict]:
    result = run_cxt(settings, "deadletters", "list", "--json", *args)
    assert result.returncode == 0, result.stderr
    return [orjson.loads(line) for line in result.stdout.splitlines()]


def _dead_lettered(settings: Settings, events: list[dict], tmp_path: Path,
                   extra: list[tuple[str, bytes]] = ()) -> None:
    """Run a worker with a tiny size limit over `events` (and raw `extra` values) until
    all of them are dead letters."""
    strict = replace(settings, max_event_bytes=SMALL)
    worker = WorkerProcess(strict, tmp_path).start()
    try:
        asyncio.run(produce_events(settings, events))
        for topic, value in extra:
            asyncio.run(produce(settings, topic, [(b"C-x", value)]))
        total = len(events) + len(extra)
        assert asyncio.run(eventually(lambda: len(_listed(settings)) == total, timeout=90,
                                      interval=1)), worker.log()
    finally:
        worker.stop()


@pytest.fixture()
def settings(stack: LocalStack) -> Settings:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    return settings


def test_list_filters_and_show(settings: Settings, tmp_path: Path) -> None:
    calls = [envelope("call", f"C-{i}", call_id=f"K-{i}", note="x" * SMALL) for i in range(3)]
    chats = [envelope("chat", "C-9", chat_id="H-1", note="x" * SMALL)]
    _dead_lettered(settings, calls + chats, tmp_path,
                   extra=[(settings.topics.call, b"{not json")])
    everything = _listed(settings)
    assert sorted(d["reason"] for d in everything) == ["invalid_json"] + ["too_large"] * 4
    assert len(_listed(settings, "--reason", "too_large")) == 4
    assert len(_listed(settings, "--reason", "too_large", "--reason", "invalid_json")) == 5
    assert [d["topic"] for d in _listed(settings, "--topic", settings.topics.chat)] == [
        settings.topics.chat]
    assert len(_listed(settings, "--since", "1h")) == 5
    assert _listed(settings, "--until", "1h") == []
    assert len(_listed(settings, "--limit", "2")) == 2

    table = run_cxt(settings, "deadletters", "list")
    assert table.returncode == 0 and table.stdout.splitlines()[0].startswith("ID")
    first = everything[0]
    shown = run_cxt(settings, "deadletters", "show", first["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout)["original"] is not None

    for bad, status, words in ((["show", "abc"], 2, "not a dead-letter id"),
                               (["show", "9:99999"], 1, "no dead letter 9:99999"),
                               (["list", "--since", "yesterday-ish"], 2, "--since"),
                               (["replay", "--topic", "cx.nope"], 2, "not a topic the worker")):
        result = run_cxt(settings, "deadletters", *bad)
        assert result.returncode == status, (bad, result.stderr)
        assert words in result.stderr and "Traceback" not in result.stderr


def test_replay_sends_each_dead_letter_once_even_when_killed(settings: Settings,
                                                            tmp_path: Path) -> None:
    customers = [f"C-{uuid.uuid4().hex[:8]}" for _ in range(200)]
    events = [envelope("call", customers[i % len(customers)], call_id=f"K-{i}",
                       note="x" * SMALL) for i in range(6000)]
    _dead_lettered(settings, events, tmp_path)
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


def test_dead_letter_topics_are_created_with_their_retention(settings: Settings) -> None:
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from kernel.kafka import make_admin

    async def retention(topic: str) -> str:
        admin = make_admin(settings)
        await admin.start()
        try:
            [response] = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, topic)])
            entries = response.resources[0][4]
            return next(str(e[1]) for e in entries if e[0] == "retention.ms")
        finally:
            await admin.close()

    days = settings.deadletter_retention_days
    assert asyncio.run(retention(settings.topics.deadletter)) == str(days * 86_400_000)
    assert asyncio.run(retention(settings.topics.webhook_deadletter)) == str(days * 86_400_000)
    assert asyncio.run(retention(settings.topics.timeline)) != str(days * 86_400_000)
