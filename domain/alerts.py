"""Bottom-2-box alerts: what an alert holds and how its lifecycle moves (pure).

Lifecycle:  open --(no ack within the timeout)--> escalated
            open | escalated --acknowledge--> acknowledged
            acknowledged --callback (any number)--> acknowledged
            acknowledged --resolve--> resolved
Resolving requires an acknowledgement first: the advisory group's loop is
"own it, call back, close it", and an unowned resolution would skip the
call-back.  Nor is an alert resolved `unclassified`: the person closing it names
the cause (the resolve's `category`) when the rules could not, or the reason is
never learnt.  Each change bumps `version` and appends to `history`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from domain.identity import is_provisional
from domain.records import Alert, AlertAction, TimelineEntry
from domain.rules import CATEGORIES, UNCLASSIFIED, Classification

OPEN, ESCALATED, ACKNOWLEDGED, RESOLVED = "open", "escalated", "acknowledged", "resolved"
STATUSES = (OPEN, ESCALATED, ACKNOWLEDGED, RESOLVED)
UNACKNOWLEDGED = (OPEN, ESCALATED)
OPEN_STATUSES = (*UNACKNOWLEDGED, ACKNOWLEDGED)  # not resolved: acknowledged is still being worked
ACTIONS = ("acknowledge", "callback", "resolve")
# The short names `cxt alerts ack|callback|resolve` and POST /api/alerts/{id}/{name}
# take, and the action each one sends.
ACTION_OF: dict[str, str] = {"ack": "acknowledge", "callback": "callback", "resolve": "resolve"}
CALLBACK_OUTCOMES = ("reached", "no_answer", "voicemail", "declined", "wrong_number")
CONTEXT_SIZE = 10
# What a resolve may leave as the alert's category: a person names the cause.
RESOLVE_CATEGORIES = tuple(c for c in CATEGORIES if c != UNCLASSIFIED)


def alert_id_for(survey_event_id: str) -> str:
    """Deterministic, so a redelivered survey maps onto the alert it already raised."""
    return "AL-" + hashlib.sha256(survey_event_id.encode()).hexdigest()[:20]


@dataclass(frozen=True, slots=True)
class ActionRejected:
    reason: str  # unknown_alert, unknown_actor, invalid_transition, category_required
    message: str


def new_alert(
    *,
    survey: TimelineEntry,
    context: list[TimelineEntry],
    rated_contact: TimelineEntry | None,
    classification: Classification,
    scale: tuple[int, int],
    raised_at: str,
    latency_ms: int,
    ack_deadline: str,
) -> Alert:
    """The alert for a bottom-2-box survey entry (a timeline entry of channel survey)."""
    payload = survey["payload"]
    contact_id = payload.get("contact_id")
    alert: Alert = {
        "alert_id": alert_id_for(survey["event_id"]),
        "event": "raised",
        "status": OPEN,
        "version": 1,
        "kind": "bottom_2_box",
        "customer_id": survey["customer_id"],
        "survey_event_id": survey["event_id"],
        "score": payload["score"],
        "scale_min": scale[0],
        "scale_max": scale[1],
        "category": classification.category,
        "category_rule": classification.rule,
        "category_reasons": list(classification.matched),
        "agent_id": payload.get("agent_id"),
        "queue": payload.get("queue"),
        "contact_id": contact_id,
        "contact_channel": payload.get("contact_channel"),
        "comment": payload.get("comment"),
        "reason_codes": payload.get("reason_codes") or [],
        "survey_occurred_at": survey["occurred_at"],
        "raised_at": raised_at,
        "latency_ms": latency_ms,
        "ack_deadline": ack_deadline,
        "rated_contact": rated_contact,
        "context": mark_rated(context, rated_contact),
        "source": survey.get("source"),
        "history": [{"event": "raised", "at": raised_at}],
    }
    if survey.get("filed_under"):  # the survey's customer is merged into this one
        alert["filed_under"] = survey["filed_under"]
    return alert


def refiled_alert(alert: Alert, to: str, now: str) -> Alert | None:
    """The alert moved to customer `to` (a merge, an unmerge or a confirmed caller),
    remembering the customer it was first filed under; None when it is there already."""
    current = alert["customer_id"]
    if current == to:
        return None
    first = alert.get("filed_under") or current
    changed: Alert = {**alert, "customer_id": to}
    if first == to or is_provisional(first):
        changed.pop("filed_under", None)
    else:
        changed["filed_under"] = first
    return advance(changed, {"event": "updated", "at": now, "customer_from": current})


def mark_rated(context: list[TimelineEntry], rated_contact: TimelineEntry | None
                ) -> list[Mapping[str, Any]]:
    rated_id = rated_contact["event_id"] if rated_contact else None
    return [{**entry, "rated": True} if entry["event_id"] == rated_id else entry
            for entry in context]


def with_rated_contact(alert: Alert, rated_contact: TimelineEntry, context: list[TimelineEntry],
                       classification: Classification | None, now: str) -> Alert | None:
    """The alert once its rated contact has arrived after it was raised (event `updated`),
    or None when it already names that contact.  The rule's category replaces
    `unclassified` only while the alert is unresolved and no person has categorised
    it (`classification` None: the survey is no longer stored, keep the category)."""
    current: Mapping[str, Any] = alert.get("rated_contact") or {}
    if current.get("event_id") == rated_contact["event_id"]:
        return None
    changed: Alert = {**alert, "rated_contact": rated_contact,
                      "context": mark_rated(context, rated_contact)}
    step: dict[str, Any] = {"event": "updated", "at": now,
                            "rated_contact": rated_contact["event_id"]}
    by_person = alert.get("categorised_by") or any("category_from" in h for h in alert["history"])
    if (classification is not None and alert["category"] == "unclassified"
            and classification.category != alert["category"]
            and alert["status"] != RESOLVED and not by_person):
        changed.update({"category": classification.category,
                        "category_rule": classification.rule,
                        "category_reasons": list(classification.matched)})
        step["category_to"] = classification.category
    return advance(changed, step)


def apply_action(alert: Alert, action: AlertAction, known_actors: Collection[str],
                 now: str) -> Alert | ActionRejected:
    """The alert after `action` (a validated cx.alert-actions.v1 value), or why not."""
    actor, kind = action["actor"], action["action"]
    if actor not in known_actors:
        return ActionRejected("unknown_actor",
                              f"actor {actor!r} is not in the rules file's actors list")
    status = alert["status"]
    if kind == "acknowledge" and status not in UNACKNOWLEDGED:
        return _bad_transition(alert, kind, "it is not open or escalated")
    if kind in ("callback", "resolve") and status == RESOLVED:
        return _bad_transition(alert, kind, "it is already resolved"
                               f"{_by(alert.get('resolved_by'))}")
    if kind in ("callback", "resolve") and status != ACKNOWLEDGED:
        return _bad_transition(alert, kind, "it must be acknowledged first")
    changed = alert.copy()
    step: dict[str, Any] = {"event": _EVENT[kind], "at": now, "actor": actor,
                            "action_id": action.get("action_id")}
    if action.get("note"):
        step["note"] = action["note"]
    if kind == "acknowledge":
        changed.update({"status": ACKNOWLEDGED, "acknowledged_at": now, "acknowledged_by": actor})
    elif kind == "callback":
        step["outcome"] = action["outcome"]
        changed["callbacks"] = [*alert.get("callbacks", []),
                                {"at": now, "by": actor, "outcome": action["outcome"],
                                 "note": action.get("note")}]
    else:
        # Closing without a root cause turns the loop into box-ticking: the person
        # resolving names it when the rules could not (issue 14).
        if (action.get("category") or alert["category"]) == UNCLASSIFIED:
            return ActionRejected(
                "category_required",
                f"cannot resolve alert {alert['alert_id']}: its category is unclassified; "
                f"pass a category, one of {', '.join(RESOLVE_CATEGORIES)}")
        changed.update({"status": RESOLVED, "resolved_at": now, "resolved_by": actor,
                        "resolution_note": action.get("note")})
        if action.get("category") and action["category"] != alert["category"]:
            _recategorise(changed, step, action["category"])
    return advance(changed, step)


def _recategorise(alert: Alert, step: dict[str, Any], category: str) -> None:
    """A person's judgement replaces the rule's: the alert must no longer say the
    rule decided, and its resolve step keeps what the rule had said (one history
    line per published event, so no line of its own)."""
    step.update(category_from=alert["category"], category_to=category,
                rule_from=alert.get("category_rule"))
    alert.update({"category": category, "category_rule": None, "category_reasons": [],
                  "categorised_by": step["actor"]})


def _by(actor: str | None) -> str:
    return f" by {actor}" if actor else ""


def escalate(alert: Alert, now: str) -> Alert | None:
    """The escalated alert, or None when it no longer needs escalating."""
    if alert["status"] != OPEN:
        return None
    return advance({**alert, "status": ESCALATED, "escalated_at": now},
                    {"event": "escalated", "at": now})


def has_action(alert: Alert, action_id: str | None) -> bool:
    return bool(action_id) and any(h.get("action_id") == action_id for h in alert["history"])


_EVENT = {"acknowledge": "acknowledged", "callback": "callback_recorded", "resolve": "resolved"}


def advance(alert: Alert, step: dict[str, Any]) -> Alert:
    alert["event"] = step["event"]
    alert["version"] = alert["version"] + 1
    alert["history"] = [*alert["history"], step]
    return alert


def _bad_transition(alert: Alert, kind: str, why: str) -> ActionRejected:
    return ActionRejected(
        "invalid_transition",
        f"cannot {kind} alert {alert['alert_id']}: status is {alert['status']}, {why}")
