"""Reading a customer's timeline (`cxt timeline`, GET /api/customers/{id}/timeline)."""

from __future__ import annotations

from kernel.redis_client import connect
from kernel.settings import Settings
from store.keys import Keys
from store.timeline import TimelineStore


async def read_timeline(
    settings: Settings,
    customer_id: str,
    *,
    channel: str | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int | None = None,
) -> dict:
    """The contract's timeline read: {"customer_id": ..., "events": [newest first]}."""
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        store = TimelineStore(redis, Keys(settings.redis_prefix),
                              max_entries=settings.timeline_max_entries,
                              max_age_days=settings.timeline_max_age_days)
        events = await store.read(customer_id, since_ms=since_ms, until_ms=until_ms,
                                  channel=channel, limit=limit)
    finally:
        await redis.aclose()
    return {"customer_id": customer_id, "events": events}


async def customer_known(settings: Settings, customer_id: str) -> bool:
    """A customer record or a timeline exists under this id (else: most likely a typo)."""
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        store = TimelineStore(redis, Keys(settings.redis_prefix),
                              max_entries=settings.timeline_max_entries,
                              max_age_days=settings.timeline_max_age_days)
        (profile,) = await store.profiles([customer_id])
        return profile is not None or (await store.exists_many([customer_id]))[0]
    finally:
        await redis.aclose()
