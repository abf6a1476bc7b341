"""`cxt deadletters list|show|replay` against a real worker, Kafka and Redis: records a
worker rejected (too large for its limit, broken JSON) are listed and filtered; after the
"fix" (a worker with the default limit) they are replayed into the timelines, each once
(tests/slow/test_deadletter_replay_slow.py kills a replay half-way and runs it again)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.deadletters import SMALL, dead_lettered, listed
from tests.support.helpers import (
    create_topics,
    envelope,
    isolated,
)
from tests.support.processes import run_cxt


@pytest.fixture()
def settings(stack: LocalStack) -> Settings:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    return settings


def test_list_filters_and_show(settings: Settings, tmp_path: Path) -> None:
    calls = [envelope("call", f"C-{i}", call_id=f"K-{i}", note="x" * SMALL) for i in range(3)]
    chats = [envelope("chat", "C-9", chat_id="H-1", note="x" * SMALL)]
    dead_lettered(settings, calls + chats, tmp_path,
                   extra=[(settings.topics.call, b"{not json")])
    everything = listed(settings)
    assert sorted(d["reason"] for d in everything) == ["invalid_json"] + ["too_large"] * 4
    assert len(listed(settings, "--reason", "too_large")) == 4
    assert len(listed(settings, "--reason", "too_large", "--reason", "invalid_json")) == 5
    assert [d["topic"] for d in listed(settings, "--topic", settings.topics.chat)] == [
        settings.topics.chat]
    assert len(listed(settings, "--since", "1h")) == 5
    assert listed(settings, "--until", "1h") == []
    assert len(listed(settings, "--limit", "2")) == 2

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
