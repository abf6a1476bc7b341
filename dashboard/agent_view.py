"""The agent context of one customer: read from Redis, ranked by dashboard.context."""

from __future__ import annotations

import asyncio
import time

from dashboard.context import build_context
from dashboard.services import Services

# Contacts that reach an agent: the moment to push the customer's context.
TRIGGER_TYPES = frozenset({"call.started", "chat.started", "email.received"})
DEFAULT_LIMIT = 30


async def agent_context(services: Services, customer_id: str, *, intent: str | None,
                        contact: dict | None = None, limit: int = DEFAULT_LIMIT) -> dict:
    started = time.perf_counter()
    # Three independent reads side by side: one round trip of waiting, not three.
    entries, profiles, alerts = await asyncio.gather(
        services.timelines.read(customer_id),
        services.timelines.profiles([customer_id]),
        services.alerts.of_customer(customer_id),
    )
    context = build_context(
        customer_id=customer_id, profile=profiles[0], entries=entries, alerts=alerts,
        intent=intent, contact=contact, config=services.agent_config,
        now_ms=int(time.time() * 1000), limit=limit)
    services.metrics.context_seconds.observe(time.perf_counter() - started)
    return context
