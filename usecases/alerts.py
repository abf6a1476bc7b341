"""Alert use-cases shared by `cxt alerts` and the HTTP API: find, show, act.

Actions are checked here for a quick answer (the alert exists, the actor is
known, the step is allowed), then published on cx.alert-actions.v1: the
worker applies them, so the stream stays the one source of truth.  The
command waits until the worker has applied the action and prints the result.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from domain.alerts import RESOLVED, ActionRejected, apply_action
from domain.records import Alert, AlertAction
from domain.rules import load_rules
from kernel.errors import CxtError
from kernel.kafka import make_producer, start_producer
from kernel.settings import Settings
from kernel.times import utc_now_iso
from schemas.registry import load_schema
from store.alerts import AlertStore
from store.stores import open_stores

APPLY_TIMEOUT_S = 15.0


class AlertCommandError(CxtError):
    """Printed as one line; the command exits non-zero."""


class AlertNotFound(AlertCommandError):
    pass


class UnknownCursor(AlertNotFound):
    """The `before` of a page names no alert among the newest ALERT_SCAN."""


class ActionRefused(AlertCommandError):
    """The action does not apply (unknown actor, step not allowed from this status)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ActionNotApplied(AlertCommandError):
    """Published, but no worker applied it in time."""


@asynccontextmanager
async def alert_store(settings: Settings) -> AsyncIterator[AlertStore]:
    async with open_stores(settings) as stores:
        yield stores.alerts


# The list reads the newest this many alerts, newest first, for filtering and paging
# (`cxt alerts` and GET /api/alerts).
ALERT_SCAN = 5000


def _kinds(kind: dict[str, Any]) -> tuple[str, ...]:
    """The alert kinds the contract allows: an enum, or (before there were several) a const."""
    return tuple(kind["enum"]) if "enum" in kind else (kind["const"],)


# What `cxt alerts --kind` and GET /api/alerts?kind= accept: the contract's, never a copy.
ALERT_KINDS: tuple[str, ...] = _kinds(load_schema("alert.v1")["properties"]["kind"])

MAX_PAGE = 500  # the most one page shows (the API's limit too)
DEFAULT_PAGE = 50  # a page when no limit is given (the API's default too)


@dataclass(frozen=True)
class AlertPage:
    alerts: list[Alert]  # newest first
    matching: int  # alerts matching the filters among the newest ALERT_SCAN
    skipped: int  # of those, how many are newer than this page (before the cursor)
    next: str | None  # the `--before` of the next page; None: this is the last


async def list_alerts(settings: Settings, *, statuses: set[str] | None, category: str | None,
                      queue: str | None, agent: str | None, limit: int,
                      before: str | None = None, kind: str | None = None) -> AlertPage:
    async with alert_store(settings) as store:
        recent = await store.recent(ALERT_SCAN)
    return page_of(recent, statuses=statuses, category=category, queue=queue, agent=agent,
                   limit=limit, before=before, kind=kind)


def page_of(recent: list[Alert], *, statuses: Collection[str] | None, category: str | None,
            queue: str | None, agent: str | None, limit: int,
            before: str | None = None, kind: str | None = None) -> AlertPage:
    """One page of `recent` (newest first): the matching alerts older than `before`."""
    start = 0
    if before is not None:
        position = next((i for i, a in enumerate(recent) if a["alert_id"] == before), None)
        if position is None:
            raise UnknownCursor(f"--before {before!r}: no such alert among the newest "
                                f"{ALERT_SCAN}; start again without --before")
        start = position + 1
    matches = [i for i, a in enumerate(recent) if alert_matches(
        a, statuses=statuses, category=category, queue=queue, agent=agent, kind=kind)]
    later = [i for i in matches if i >= start]
    page = [recent[i] for i in later[:limit]]
    more = len(later) > limit
    return AlertPage(page, len(matches), len(matches) - len(later),
                     page[-1]["alert_id"] if more else None)


def alert_matches(alert: Alert, *, statuses: Collection[str] | None, category: str | None,
                  queue: str | None, agent: str | None, kind: str | None = None) -> bool:
    """The list filters; None (or an empty set of statuses) lets everything through."""
    return ((kind is None or (alert.get("kind") or "bottom_2_box") == kind)
            and (not statuses or alert["status"] in statuses)
            and (category is None or alert["category"] == category)
            and (queue is None or alert.get("queue") == queue)
            and (agent is None or alert.get("agent_id") == agent))


def open_alerts_of(alerts: list[Alert]) -> list[dict[str, Any]]:
    """The customer's unresolved alerts, newest first, each in brief."""
    unresolved = sorted((a for a in alerts if a["status"] != RESOLVED),
                        key=lambda a: (a["raised_at"], a["alert_id"]), reverse=True)
    return [{field: a.get(field) for field in _BRIEF} for a in unresolved]


_BRIEF = ("alert_id", "kind", "intent", "status", "version", "score", "scale_max", "category",
          "queue", "agent_id", "comment", "raised_at", "ack_deadline", "acknowledged_by")


async def show_alert(settings: Settings, alert_id: str) -> Alert:
    async with alert_store(settings) as store:
        alert = await store.get(alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id!r}")
    return alert


async def act(settings: Settings, action: AlertAction) -> Alert:
    """Publish an action after checking it; return the alert once the worker applied it."""
    rules = load_rules(settings.alert_rules_path)
    producer = await start_producer(make_producer(settings))
    try:
        async with alert_store(settings) as store:
            return await submit_action(store, producer, settings.topics.alert_actions,
                                       rules.actors, action)
    finally:
        await producer.stop()


async def submit_action(store: AlertStore, producer: AIOKafkaProducer, topic: str,
                        actors: Collection[str], action: AlertAction) -> Alert:
    """Check `action` against the alert as stored, publish it, wait until it is applied."""
    action = {"action_id": uuid.uuid4().hex, **action, "at": utc_now_iso()}
    alert = await store.get(action["alert_id"])
    if alert is None:
        raise AlertNotFound(f"no alert {action['alert_id']!r}")
    checked = apply_action(alert, action, actors, utc_now_iso())
    if isinstance(checked, ActionRejected):
        raise ActionRefused(checked.message, checked.reason)
    await producer.send_and_wait(topic, orjson.dumps(action), key=action["alert_id"].encode())
    return await _wait_applied(store, action)


async def _wait_applied(store: AlertStore, action: AlertAction) -> Alert:
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while time.monotonic() < deadline:
        alert = await store.get(action["alert_id"])
        if alert and any(h.get("action_id") == action["action_id"] for h in alert["history"]):
            return alert
        await asyncio.sleep(0.2)
    raise ActionNotApplied(
        f"the action was published on {action['alert_id']}'s topic, but no worker applied it "
        f"within {APPLY_TIMEOUT_S:.0f} s; is `cxt worker` running?")
