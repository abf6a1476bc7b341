"""Alerts of both kinds and scored timeline entries stored straight into the real Redis, for
the dashboard's tests of the kind filter, the signals and the at-risk banner.

Stored through the store classes the worker uses (no mocks): the page and the API read
exactly what the worker would have written.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from kernel.settings import Settings
from store.stores import open_stores
from store.timeline import NewEntry


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_alert_id() -> str:
    return f"AL-{uuid.uuid4().hex[:20]}"


def _common(alert_id: str, customer_id: str, raised: datetime) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "event": "raised", "status": "open", "version": 1,
        "customer_id": customer_id, "category": "business_operations",
        "category_rule": "billing-errors", "category_reasons": ["comment mentions 'bill'"],
        "agent_id": "A-013", "queue": "billing-uk", "raised_at": iso(raised), "latency_ms": 41,
        "ack_deadline": iso(raised + timedelta(minutes=15)), "rated_contact": None,
        "context": [], "source": None, "history": [{"event": "raised", "at": iso(raised)}],
    }


def negative_alert(customer_id: str, *, chat_id: str, minutes_ago: float = 5,
                   intent: str = "billing", linked: list[str] | None = None) -> dict:
    """An open negative-interaction alert: escalation language and a third contact on a chat."""
    raised = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    said = iso(raised - timedelta(seconds=30))
    contact = f"chat:{chat_id}"
    return {
        **_common(new_alert_id(), customer_id, raised),
        "kind": "negative_interaction", "survey_event_id": None, "score": None,
        "scale_min": None, "scale_max": None, "comment": None, "survey_occurred_at": None,
        "reason_codes": [], "contact_id": chat_id, "contact_channel": "chat", "intent": intent,
        "signals": [
            {"rule": "escalation_language", "event_id": f"ev-{chat_id}", "channel": "chat",
             "contact": contact, "occurred_at": said, "detail": "said 'ombudsman'"},
            {"rule": "repeat_contact", "event_id": f"ev-{chat_id}", "channel": "chat",
             "contact": contact, "occurred_at": said, "count": 3},
            {"rule": "negative_sentiment", "event_id": f"ev-{chat_id}", "channel": "chat",
             "contact": contact, "occurred_at": said, "score": -0.81, "weight": 1.0},
        ],
        "linked_alerts": linked or [],
    }


def survey_alert(customer_id: str, *, minutes_ago: float = 10, comment: str = "rude agent",
                 linked_alert_id: str | None = None) -> dict:
    """An open bottom-2-box alert (1 of 5 on a call)."""
    raised = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    survey_id = uuid.uuid4().hex
    alert = {
        **_common(new_alert_id(), customer_id, raised), "kind": "bottom_2_box",
        "survey_event_id": survey_id, "score": 1, "scale_min": 1, "scale_max": 5,
        "comment": comment, "survey_occurred_at": iso(raised - timedelta(seconds=1)),
        "reason_codes": ["agent_attitude"], "contact_id": f"call-{survey_id[:8]}",
        "contact_channel": "call",
    }
    if linked_alert_id is not None:
        alert["linked_alert_id"] = linked_alert_id
    return alert


def scored_chat(customer_id: str, *, hours_ago: float, score: float, label: str,
                text: str) -> dict:
    """A chat.ended entry whose customer lines scored `score` (the entry's `sentiment`)."""
    occurred = iso(datetime.now(UTC) - timedelta(hours=hours_ago))
    chat_id = f"CH-{uuid.uuid4().hex[:8]}"
    return {
        "event_id": uuid.uuid4().hex, "type": "chat.ended", "channel": "chat",
        "occurred_at": occurred, "received_at": occurred, "customer_id": customer_id,
        "payload": {"chat_id": chat_id, "intent": "billing", "queue": "billing-chat",
                    "agent_id": "A-012", "outcome": "resolved", "handle_seconds": 300,
                    "messages": [{"from": "customer", "text": text, "at": occurred}]},
        "sentiment": {"score": score, "label": label, "source": "model", "chars": len(text)},
    }


def _ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


async def _store(settings: Settings, alerts: Sequence[Any], entries: Sequence[Any]) -> None:
    async with open_stores(settings) as stores:
        if alerts:
            now_ms = int(datetime.now(UTC).timestamp() * 1000)
            await stores.alerts.put_new(alerts, now_ms, 3_600_000)
            # As the worker does: the advisory chart's negative-interaction series.
            await stores.contact_reasons.count_alerts([
                (a["alert_id"], _ms(a["raised_at"])) for a in alerts
                if a["kind"] == "negative_interaction"])
        if entries:
            await stores.timelines.add([
                NewEntry(e["customer_id"], e["event_id"],
                         _ms(e["occurred_at"]),
                         orjson.dumps(e), {}, e)
                for e in entries])


def store(settings: Settings, *, alerts: Sequence[dict] = (),
          entries: Sequence[dict] = ()) -> None:
    """Store alerts and timeline entries, on a thread of its own: Playwright's sync API
    owns the test thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _store(settings, alerts, entries)).result()
