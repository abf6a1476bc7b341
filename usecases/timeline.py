"""Reading a customer's timeline (`cxt timeline`, GET /api/customers/{id}/timeline)."""

from __future__ import annotations

from typing import TypedDict

from domain.records import TimelineEntry
from kernel.settings import Settings
from store.stores import open_stores


class TimelineRead(TypedDict):
    customer_id: str
    events: list[TimelineEntry]  # newest first


async def read_timeline(
    settings: Settings,
    customer_id: str,
    *,
    channel: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int | None = None,
) -> TimelineRead:
    """The contract's timeline read: {"customer_id": ..., "events": [newest first]}."""
    async with open_stores(settings) as stores:
        events = await stores.timelines.read(customer_id, since_ms=since_ms,
                                             until_ms=until_ms, channel=channel, limit=limit)
    return {"customer_id": customer_id, "events": events}


async def customer_known(settings: Settings, customer_id: str) -> bool:
    """A customer record or a timeline exists under this id (else: most likely a typo)."""
    async with open_stores(settings) as stores:
        (profile,) = await stores.timelines.profiles([customer_id])
        return profile is not None or (await stores.timelines.exists_many([customer_id]))[0]
