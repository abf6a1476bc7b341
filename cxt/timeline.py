"""`cxt timeline`: a customer's timeline (`usecases.timeline`) as a table or JSON."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, TextIO

import orjson

if TYPE_CHECKING:
    from domain.records import TimelineEntry
    from usecases.timeline import TimelineRead


def print_json(timeline: TimelineRead, out: TextIO = sys.stdout) -> None:
    out.write(orjson.dumps(timeline).decode() + "\n")


def print_table(timeline: TimelineRead, out: TextIO = sys.stdout) -> None:
    events = timeline["events"]
    if not events:
        out.write(f"no timeline entries of {timeline['customer_id']} match the filters\n")
        return
    out.write(f"{'occurred_at':<26} {'channel':<7} {'type':<16} summary\n")
    for e in events:
        out.write(f"{e['occurred_at']:<26} {e['channel']:<7} {e['type']:<16} {summary(e)}\n")
    out.write(f"{len(events)} entries, newest first\n")


def summary(entry: TimelineEntry) -> str:
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
