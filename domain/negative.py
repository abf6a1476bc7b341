"""Negative-interaction alerts: raised from signals, at most one open per customer and
intent (pure; the worker keeps the "one open" pointer in the store).

A signal (domain.signals) is one rule firing on one contact.  The alert lists each
(rule, contact) once, so a redelivered event, or the started and ended events of one
call, add nothing the second time; a new one makes a new version (`updated`).  The
lifecycle after raising is the bottom-2-box one (domain.alerts).

An alert holds at most MAX_SIGNALS signals and MAX_LINKED linked survey alerts.  A
customer whose open alert nobody works for days keeps producing signals; unbounded, the
alert (and every version of it the worker reads, rewrites and publishes) would grow
with each.  Past the bound the alert stays as it is: the later contacts are on the
customer's timeline, and the advisor has the first twenty signals to act on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from domain.alerts import OPEN, RESOLVED, advance, mark_rated
from domain.records import Alert, TimelineEntry
from domain.rules import UNCLASSIFIED, Classification

KIND = "negative_interaction"
BOTTOM_2_BOX = "bottom_2_box"
KINDS = (BOTTOM_2_BOX, KIND)
MAX_SIGNALS = 20
MAX_LINKED = 20


def negative_alert_id(customer_id: str, intent: str | None, event_id: str) -> str:
    """Deterministic in the signal that opens it, so a redelivery finds the same alert."""
    seed = f"negative\x1f{customer_id}\x1f{intent or ''}\x1f{event_id}"
    return "AL-" + hashlib.sha256(seed.encode()).hexdigest()[:20]


def signal_key(signal: Mapping[str, Any]) -> tuple[str, str]:
    return signal["rule"], signal["contact"]


def new_signals(alert: Alert | None, signals: Iterable[Mapping[str, Any]]
                ) -> list[dict[str, Any]]:
    """The signals the alert does not hold yet (each (rule, contact) once, in order)."""
    held = alert.get("signals", []) if alert is not None else []
    seen = {signal_key(s) for s in held}
    fresh: list[dict[str, Any]] = []
    for signal in signals:
        if signal_key(signal) not in seen:
            seen.add(signal_key(signal))
            fresh.append(dict(signal))
    return fresh


def is_full(alert: Alert) -> bool:
    """Whether the alert holds as many signals as it may (see the module's docstring)."""
    return len(alert.get("signals", ())) >= MAX_SIGNALS


def new_negative_alert(*, customer_id: str, intent: str | None,
                       signals: Sequence[Mapping[str, Any]], trigger: TimelineEntry,
                       context: list[TimelineEntry], classification: Classification,
                       raised_at: str, latency_ms: int, ack_deadline: str,
                       alert_id: str | None = None) -> Alert:
    """The alert its first signals raise; `trigger` is the entry the first came from.
    `alert_id`: the id another worker has claimed for it (default: from the signals)."""
    payload = trigger["payload"]
    alert: Alert = {
        "alert_id": alert_id or negative_alert_id(customer_id, intent, signals[0]["event_id"]),
        "event": "raised",
        "status": OPEN,
        "version": 1,
        "kind": KIND,
        "customer_id": customer_id,
        "survey_event_id": None,
        "score": None,
        "scale_min": None,
        "scale_max": None,
        "category": classification.category,
        "category_rule": classification.rule,
        "category_reasons": list(classification.matched),
        "agent_id": _text(payload.get("agent_id")),
        "queue": _text(payload.get("queue")),
        "contact_id": trigger["event_id"],
        "contact_channel": trigger["channel"],
        "comment": None,
        "reason_codes": [],
        "survey_occurred_at": None,
        "raised_at": raised_at,
        "latency_ms": latency_ms,
        "ack_deadline": ack_deadline,
        "rated_contact": None,
        "context": mark_rated(context, trigger),
        "source": trigger.get("source"),
        "history": [{"event": "raised", "at": raised_at,
                     "signals": [s["rule"] for s in signals]}],
        "intent": intent,
        "signals": [dict(s) for s in signals[:MAX_SIGNALS]],
        "linked_alerts": [],
    }
    return alert


def with_signals(alert: Alert, signals: Sequence[Mapping[str, Any]],
                 classification: Classification | None, now: str) -> Alert | None:
    """The alert with the signals it did not hold (event `updated`); None when it holds
    them all or as many as it may.  While no rule and no person has categorised it, the
    newest contact's words may let the rules decide."""
    room = MAX_SIGNALS - len(alert.get("signals", ()))
    fresh = new_signals(alert, signals)[:room] if room > 0 else []
    if not fresh:
        return None
    changed: Alert = {**alert, "signals": [*alert.get("signals", []), *fresh]}
    step: dict[str, Any] = {"event": "updated", "at": now, "signals": [s["rule"] for s in fresh]}
    if (classification is not None and alert["category"] == UNCLASSIFIED
            and classification.category != UNCLASSIFIED and alert["status"] != RESOLVED
            and not alert.get("categorised_by")):
        changed.update({"category": classification.category,
                        "category_rule": classification.rule,
                        "category_reasons": list(classification.matched)})
        step["category_to"] = classification.category
    return advance(changed, step)


def with_linked(alert: Alert, linked_alert_id: str, now: str) -> Alert | None:
    """The alert with a bottom-2-box alert linked to it; None when it is linked already
    or holds as many as it may."""
    linked = alert.get("linked_alerts", [])
    if linked_alert_id in linked or len(linked) >= MAX_LINKED:
        return None
    return advance({**alert, "linked_alerts": [*linked, linked_alert_id]},
                   {"event": "updated", "at": now, "linked_alert": linked_alert_id})


def holds_contact(alert: Alert, contact_id: str) -> bool:
    """Whether one of the alert's signals came from the contact a survey names (by the
    interaction's event_id or its channel's contact id)."""
    for signal in alert.get("signals", ()):
        contact = signal.get("contact", "")
        if signal.get("event_id") == contact_id or contact.partition(":")[2] == contact_id:
            return True
    return False


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
