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
from typing import TextIO

import orjson
from aiokafka import AIOKafkaProducer

from cxt.produce import make_producer, start_producer
from cxt.redis_client import connect
from cxt.settings import Settings
from streams.alert_store import AlertStore
from streams.alerts import ActionRejected, apply_action
from streams.keys import Keys
from streams.records import utc_now_iso
from streams.rules import load_rules

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


async def list_alerts(settings: Settings, *, statuses: set[str] | None, category: str | None,
                      queue: str | None, agent: str | None, limit: int) -> list[dict]:
    async with alert_store(settings) as store:
        return await find_alerts(store, statuses=statuses, category=category, queue=queue,
                                 agent=agent, limit=limit)


async def find_alerts(store: AlertStore, *, statuses: Collection[str] | None,
                      category: str | None, queue: str | None, agent: str | None,
                      limit: int) -> list[dict]:
    """Newest first, filtered; scans the most recent alerts (up to 50,000)."""
    alerts = await store.recent(max(limit * 20, 1000))
    return [a for a in alerts if alert_matches(a, statuses=statuses, category=category,
                                               queue=queue, agent=agent)][:limit]


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


def print_list(alerts: list[dict], out: TextIO = sys.stdout) -> None:
    if not alerts:
        out.write("no alerts match\n")
        return
    out.write(f"{'alert_id':<23} {'status':<12} {'raised_at':<24} {'score':<5} "
              f"{'category':<19} {'customer':<12} {'queue':<14} agent\n")
    for a in alerts:
        out.write(f"{a['alert_id']:<23} {a['status']:<12} {a['raised_at']:<24} "
                  f"{a['score']}/{a['scale_max']:<3} {a['category']:<19} "
                  f"{a['customer_id']:<12} {a.get('queue') or '-':<14} "
                  f"{a.get('agent_id') or '-'}\n")
    out.write(f"{len(alerts)} alert(s), newest first\n")


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
    if alert.get("category_reasons"):
        out.write(f"  categorised by rule {alert.get('category_rule')!r}: "
                  f"{'; '.join(alert['category_reasons'])}\n")
    out.write(f"  raised {alert['raised_at']} ({alert['latency_ms']} ms after the survey reached "
              f"Kafka); acknowledge by {alert['ack_deadline']}\n")
    out.write("  history:\n")
    for step in alert["history"]:
        who = f" by {step['actor']}" if step.get("actor") else ""
        extra = f" ({step['outcome']})" if step.get("outcome") else ""
        note = f": {step['note']}" if step.get("note") else ""
        out.write(f"    {step['at']}  {step['event']}{who}{extra}{note}\n")
    out.write("  recent interactions (newest first, * = rated contact):\n")
    for entry in alert["context"]:
        mark = "*" if entry.get("rated") else " "
        out.write(f"   {mark} {entry['occurred_at']:<26} {entry['channel']:<7} {entry['type']}\n")
