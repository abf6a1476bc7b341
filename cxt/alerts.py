"""`cxt alerts`: list and show alerts; acknowledge, record call-backs, resolve.

Actions are checked here for a quick answer (the alert exists, the actor is
known, the step is allowed), then published on cx.alert-actions.v1: the
worker applies them, so the stream stays the one source of truth.  The
command waits until the worker has applied the action and prints the result.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO

import orjson
from aiokafka import AIOKafkaProducer

from cxt.produce import make_producer, start_producer
from domain.alerts import ActionRejected, apply_action
from domain.rules import load_rules
from kernel.redis_client import connect
from kernel.settings import Settings
from store.alerts import AlertStore
from store.keys import Keys
from streams.records import utc_now_iso

APPLY_TIMEOUT_S = 15.0


class AlertCommandError(Exception):
    """Printed as one line; the command exits non-zero."""


class AlertNotFound(AlertCommandError):
    pass


class ActionRefused(AlertCommandError):
    """The action does not apply (unknown actor, step not allowed from this status)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ActionNotApplied(AlertCommandError):
    """Published, but no worker applied it in time."""


@asynccontextmanager
async def alert_store(settings: Settings) -> AsyncIterator[AlertStore]:
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    try:
        yield AlertStore(redis, Keys(settings.redis_prefix),
                         counters_ttl_days=settings.timeline_max_age_days)
    finally:
        await redis.aclose()


# The list reads the newest this many alerts (the HTTP API's list scans as many).
ALERT_SCAN = 5000
MAX_PAGE = 500  # the most one page shows (the API's limit too)


@dataclass(frozen=True)
class AlertPage:
    alerts: list[dict]  # newest first
    matching: int  # alerts matching the filters among the newest ALERT_SCAN
    skipped: int  # of those, how many are newer than this page (before the cursor)
    next: str | None  # the `--before` of the next page; None: this is the last


async def list_alerts(settings: Settings, *, statuses: set[str] | None, category: str | None,
                      queue: str | None, agent: str | None, limit: int,
                      before: str | None = None) -> AlertPage:
    async with alert_store(settings) as store:
        recent = await store.recent(ALERT_SCAN)
    return page_of(recent, statuses=statuses, category=category, queue=queue, agent=agent,
                   limit=limit, before=before)


def page_of(recent: list[dict], *, statuses: Collection[str] | None, category: str | None,
            queue: str | None, agent: str | None, limit: int,
            before: str | None = None) -> AlertPage:
    """One page of `recent` (newest first): the matching alerts older than `before`."""
    start = 0
    if before is not None:
        position = next((i for i, a in enumerate(recent) if a["alert_id"] == before), None)
        if position is None:
            raise AlertNotFound(f"--before {before!r}: no such alert among the newest "
                                f"{ALERT_SCAN}; start again without --before")
        start = position + 1
    matches = [i for i, a in enumerate(recent) if alert_matches(
        a, statuses=statuses, category=category, queue=queue, agent=agent)]
    later = [i for i in matches if i >= start]
    page = [recent[i] for i in later[:limit]]
    more = len(later) > limit
    return AlertPage(page, len(matches), len(matches) - len(later),
                     page[-1]["alert_id"] if more else None)


def alert_matches(alert: dict, *, statuses: Collection[str] | None, category: str | None,
                  queue: str | None, agent: str | None) -> bool:
    """The list filters; None (or an empty set of statuses) lets everything through."""
    return ((not statuses or alert["status"] in statuses)
            and (category is None or alert["category"] == category)
            and (queue is None or alert.get("queue") == queue)
            and (agent is None or alert.get("agent_id") == agent))


async def show_alert(settings: Settings, alert_id: str) -> dict:
    async with alert_store(settings) as store:
        alert = await store.get(alert_id)
    if alert is None:
        raise AlertNotFound(f"no alert {alert_id!r}")
    return alert


async def act(settings: Settings, action: dict) -> dict:
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
                        actors: Collection[str], action: dict) -> dict:
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


async def _wait_applied(store: AlertStore, action: dict) -> dict:
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while time.monotonic() < deadline:
        alert = await store.get(action["alert_id"])
        if alert and any(h.get("action_id") == action["action_id"] for h in alert["history"]):
            return alert
        await asyncio.sleep(0.2)
    raise ActionNotApplied(
        f"the action was published on {action['alert_id']}'s topic, but no worker applied it "
        f"within {APPLY_TIMEOUT_S:.0f} s; is `cxt worker` running?")


# -- output ---------------------------------------------------------------------------


def print_list(found: AlertPage, out: TextIO = sys.stdout) -> None:
    alerts = found.alerts
    if not alerts:
        out.write("no alerts match\n" if not found.skipped else "no older alerts match\n")
        return
    out.write(f"{'alert_id':<23} {'status':<12} {'raised_at':<24} {'score':<5} "
              f"{'category':<19} {'customer':<12} {'queue':<14} agent\n")
    for a in alerts:
        out.write(f"{a['alert_id']:<23} {a['status']:<12} {a['raised_at']:<24} "
                  f"{a['score']}/{a['scale_max']:<3} {a['category']:<19} "
                  f"{a['customer_id']:<12} {a.get('queue') or '-':<14} "
                  f"{a.get('agent_id') or '-'}\n")
    first = found.skipped + 1
    shown = (f"{len(alerts)} of {found.matching} alert(s)" if first == 1
             else f"alerts {first}-{found.skipped + len(alerts)} of {found.matching}")
    more = f"; --before {found.next} for more" if found.next else ""
    scope = f" (of the newest {ALERT_SCAN})" if found.matching and found.next else ""
    out.write(f"{shown}{scope}, newest first{more}\n")


def print_alert(alert: dict, out: TextIO = sys.stdout) -> None:
    out.write(f"{alert['alert_id']}  {alert['status'].upper()}  bottom-2-box "
              f"{alert['score']}/{alert['scale_max']}  category {alert['category']}\n")
    out.write(f"  customer {alert['customer_id']}  agent {alert.get('agent_id') or '-'}  "
              f"queue {alert.get('queue') or '-'}  "
              f"rated contact {alert.get('contact_id') or '-'}\n")
    if alert.get("comment"):
        out.write(f"  comment: {alert['comment']!r}\n")
    if alert.get("reason_codes"):
        out.write(f"  reason codes: {', '.join(alert['reason_codes'])}\n")
    if alert.get("categorised_by"):
        out.write(f"  categorised by {alert['categorised_by']} (re-categorised by hand)\n")
    elif alert.get("category_reasons"):
        out.write(f"  categorised by rule {alert.get('category_rule')!r}: "
                  f"{'; '.join(alert['category_reasons'])}\n")
    out.write(f"  raised {alert['raised_at']} ({alert['latency_ms']} ms after the survey reached "
              f"Kafka); acknowledge by {alert['ack_deadline']}\n")
    out.write("  history:\n")
    for step in alert["history"]:
        who = f" by {step['actor']}" if step.get("actor") else ""
        extra = f" ({step['outcome']})" if step.get("outcome") else ""
        note = f": {step['note']}" if step.get("note") else ""
        if step.get("category_to"):
            was = f"{step['category_from']} -> " if step.get("category_from") else "set to "
            extra += f" (category {was}{step['category_to']})"
        out.write(f"    {step['at']}  {step['event']}{who}{extra}{note}\n")
    out.write("  recent interactions (newest first, * = rated contact):\n")
    for entry in alert["context"]:
        mark = "*" if entry.get("rated") else " "
        out.write(f"   {mark} {entry['occurred_at']:<26} {entry['channel']:<7} {entry['type']}\n")
