"""A customer's own notes and preferences put straight into Redis, in the layout the
worker writes (store/self_service.py, store/keys.py), for the pages' browser tests that
are about showing them rather than about the self-service stream."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import orjson
import redis

from kernel.settings import Settings
from store.keys import Keys


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def note(text: str, *, days_ago: float = 0) -> dict:
    return {"note_id": uuid.uuid4().hex, "text": text, "event_id": uuid.uuid4().hex,
            "added_at": iso(datetime.now(UTC) - timedelta(days=days_ago))}


def preferences(**fields: object) -> dict:
    """A full preferences object (schemas/self-service.v1.json), `fields` changed."""
    return {"preferred_channel": None, "contact_hours": None, "time_zone": None,
            "language": None, "accessibility_needs": None, "no_sales_offers": False, **fields}


def seed_own_words(settings: Settings, customer_id: str, *, notes: Sequence[dict] = (),
                   prefs: dict | None = None) -> None:
    keys = Keys(settings.redis_prefix)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        for item in notes:
            pipe.hset(keys.notes(customer_id), item["note_id"], orjson.dumps(item))
        if prefs is not None:
            now = datetime.now(UTC)
            stored = {**prefs, "set_at": iso(now), "event_id": uuid.uuid4().hex,
                      "occurred_ms": int(now.timestamp() * 1000)}
            pipe.set(keys.preferences(customer_id), orjson.dumps(stored))
        pipe.execute()
    finally:
        client.close()
