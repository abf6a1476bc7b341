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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

import orjson
from redis.asyncio import Redis

from cxt.produce import make_producer, start_producer
from cxt.settings import Settings
from streams.alert_store import AlertStore
from streams.alerts import ActionRejected, apply_action
from streams.keys import Keys
from streams.records import utc_now_iso
from streams.rules import load_rules

APPLY_TIMEOUT_S = 15.0


class AlertCommandError(Exception):
    """Printed as one line; the command exits non-zero."""


@asynccontextmanager
async def alert_store(settings: Settings) -> AsyncIterator[AlertStore]:
    redis = Redis.from_url(settings.redis_url)
    try:
        yield AlertStore(redis, Keys(settings.redis_prefix),
                         counters_ttl_days=settings.timeline_max_age_days)
    finally:
        await redis.aclose()


async def list_alerts(settings: Settings, *, statuses: set[str] | None, category: str | None,
                      queue: str | None, agent: str | None, limit: int) -> list[dict]:
    """Newest first, filtered; scans the most recent alerts (up to 50,000)."""
    async with alert_store(settings) as store:
        alerts = await store.recent(max(limit * 20, 1000))
    picked = [a for a in alerts
              if (not statuses or a["status"] in statuses)
              and (category is None or a["category"] == category)
              and (queue is None or a.get("queue") == queue)
              and (agent is None or a.get("agent_id") == agent)]
    return picked[:limit]


async def show_alert(settings: Settings, alert_id: str) -> dict:
    async with alert_store(settings) as store:
        alert = await store.get(alert_id)
    if alert is None:
        raise AlertCommandError(f"no alert {alert_id!r}")
    return alert


async def act(settings: Settings, action: dict) -> dict:
    """Publish an action after checking it; return the alert once the worker applied it."""
    rules = load_rules(settings.alert_rules_path)
    action = {"action_id": uuid.uuid4().hex, **action, "at": utc_now_iso()}
    async with alert_store(settings) as store:
        alert = await store.get(action["alert_id"])
        if alert is None:
            raise AlertCommandError(f"no alert {action['alert_id']!r}")
        checked = apply_action(alert, action, rules.actors, utc_now_iso())
        if isinstance(checked, ActionRejected):
            raise AlertCommandError(checked.message)
        await _publish_action(settings, action)
        return await _wait_applied(store, action)


async def _publish_action(settings: Settings, action: dict) -> None:
    producer = await start_producer(make_producer(settings))
    try:
        await producer.send_and_wait(settings.topics.alert_actions, orjson.dumps(action),
                                     key=action["alert_id"].encode())
    finally:
        await producer.stop()


async def _wait_applied(store: AlertStore, action: dict) -> dict:
    deadline = time.monotonic() + APPLY_TIMEOUT_S
    while time.monotonic() < deadline:
        alert = await store.get(action["alert_id"])
        if alert and any(h.get("action_id") == action["action_id"] for h in alert["history"]):
            return alert
        await asyncio.sleep(0.2)
    raise AlertCommandError(
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
