"""Create the project's topics (idempotent), with the configured partitions."""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kernel.kafka import make_admin
from kernel.settings import Settings, Topics


def topic_specs(topics: Topics, deadletter_retention_days: int = 14) -> list[NewTopic]:
    """Our topics as created: compacted ones compacted; the dead-letter ones kept only
    `deadletter_retention_days`, since erasure cannot reach the records they hold."""
    retention = {"retention.ms": str(deadletter_retention_days * 86_400_000)}
    specs = []
    for name in topics.all:
        config = {"cleanup.policy": "compact"} if name in topics.compacted else {}
        if name in (topics.deadletter, topics.webhook_deadletter):
            config = retention
        specs.append(NewTopic(name, topics.partitions, topics.replication, topic_configs=config))
    return specs


async def ensure_topics(settings: Settings) -> list[str]:
    """Create whichever of our topics are missing; return the names created."""
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [s for s in topic_specs(settings.topics, settings.deadletter_retention_days)
                   if s.name not in existing]
        if missing:
            # Another worker may create them between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics(missing)
            await _wait_for_leaders(admin, [s.name for s in missing])
        return [s.name for s in missing]
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: list[str],
                            timeout: float = 15) -> None:
    """Wait until every partition has a leader, so the first sends do not bounce."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        described = await admin.describe_topics(names)
        if all(d["error_code"] == 0 and d["partitions"]
               and all(p["leader"] >= 0 for p in d["partitions"]) for d in described):
            return
        await asyncio.sleep(0.1)


async def describe_topics(settings: Settings) -> dict[str, int]:
    """Our topics that exist, with their partition counts."""
    admin = make_admin(settings)
    await admin.start()
    try:
        names = [n for n in settings.topics.all if n in set(await admin.list_topics())]
        if not names:
            return {}
        described = await admin.describe_topics(names)
        return {d["topic"]: len(d["partitions"]) for d in described}
    finally:
        await admin.close()
