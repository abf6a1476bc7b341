"""`cxt timeline`: read a customer's timeline from Redis and show it."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TextIO

import orjson

from kernel.redis_client import connect
from kernel.settings import Settings
from store.keys import Keys
from store.timeline import TimelineStore

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadTime(ValueError):
    pass


def parse_time(text: str, *, now: datetime | None = None) -> int:
    """RFC 3339 timestamp, or an age such as 90m, 24h, 7d: epoch milliseconds.

    The one parser of time filters (CLI and HTTP API); BadTime says what is wrong.
    """
    shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "..."
    match = _RELATIVE.match(text.strip())
    if match:
        try:
            delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
            return int(((now or datetime.now(UTC)) - delta).timestamp() * 1000)
        except (OverflowError, ValueError):  # before the year 1, or beyond timedelta
            raise BadTime(f"{shown} reaches back before the year 1") from None
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(
            f"{shown} is neither an RFC 3339 timestamp (2026-11-22T10:00:00Z) "
            "nor an age like 90m, 24h, 7d"
        ) from None
    if parsed.tzinfo is None:
        raise BadTime(f"{shown} has no UTC offset; add Z or +01:00")
    return int(parsed.timestamp() * 1000)


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


def print_json(timeline: dict, out: TextIO = sys.stdout) -> None:
    out.write(orjson.dumps(timeline).decode() + "\n")


def print_table(timeline: dict, out: TextIO = sys.stdout) -> None:
    events = timeline["events"]
    if not events:
        out.write(f"no timeline entries of {timeline['customer_id']} match the filters\n")
        return
    out.write(f"{'occurred_at':<26} {'channel':<7} {'type':<16} summary\n")
    for e in events:
        out.write(f"{e['occurred_at']:<26} {e['channel']:<7} {e['type']:<16} {summary(e)}\n")
    out.write(f"{len(events)} entries, newest first\n")


def summary(entry: dict) -> str:
    """A short human line per entry: what an agent would want to see at a glance."""
    p = entry.get("payload") or {}
    parts: list[str] = []
    if "score" in p:
        parts.append(f"score {p['score']}/{p.get('scale_max', 5)}")
    for field in ("intent", "queue", "outcome", "subject", "network"):
        if p.get(field):
            parts.append(f"{field}={p[field]}")
    if p.get("agent_id"):
        parts.append(f"agent {p['agent_id']}")
    if p.get("comment"):
        parts.append(repr(p["comment"][:60]))
    if entry.get("linked_from"):
        parts.append("(linked)")
    return " ".join(parts) or entry["event_id"]
