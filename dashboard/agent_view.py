"""The agent context of one customer: read from Redis, ranked by dashboard.context."""

from __future__ import annotations

import asyncio
import time

from dashboard.context import NOTES_SHOWN, build_context
from dashboard.services import Services
from domain.identity import is_ambiguous
from usecases.customers import candidates_of

# Contacts that reach an agent: the moment to push the customer's context.
TRIGGER_TYPES = frozenset({"call.started", "chat.started", "email.received"})
DEFAULT_LIMIT = 30


async def agent_context(services: Services, customer_id: str, *, intent: str | None,
                        contact: dict | None = None, limit: int = DEFAULT_LIMIT) -> dict:
    started = time.perf_counter()
    # Four independent reads side by side: one round trip of waiting, not four.  The
    # customer's notes and preferences are one pipeline; one note more than is shown
    # tells the page that there are others.
    entries, profiles, alerts, words = await asyncio.gather(
        services.timelines.read(customer_id),
        services.timelines.profiles([customer_id]),
        services.alerts.of_customer(customer_id),
        services.self_service.own_words([customer_id], limit=NOTES_SHOWN + 1),
    )
    context = build_context(
        customer_id=customer_id, profile=profiles[0], entries=entries, alerts=alerts,
        intent=intent, contact=contact, config=services.agent_config,
        now_ms=int(time.time() * 1000), limit=limit, notes=words[0].notes,
        preferences=words[0].preferences)
    if is_ambiguous(customer_id):
        context["who_is_calling"] = await who_is_calling(services, customer_id, contact, entries)
    services.metrics.context_seconds.observe(time.perf_counter() - started)
    return context


async def who_is_calling(services: Services, profile_id: str, contact: dict | None,
                         entries: list[dict]) -> dict:
    """An ambiguous profile's question to the agent: the customers who claim its
    identifier (each at its root) and the interaction a confirmation files, that of the
    live contact, or on a look-up the profile's newest."""
    candidates = await candidates_of(services.timelines, services.identities, profile_id)
    event_id = contact.get("event_id") if isinstance(contact, dict) else None
    if not isinstance(event_id, str) and entries:
        event_id = entries[0].get("event_id")
    return {"profile_id": profile_id, "event_id": event_id if isinstance(event_id, str) else None,
            "waiting": len(entries),
            "candidates": [{"customer_id": c.customer_id, "name": c.name} for c in candidates]}
