"""The records that cross modules, typed: timeline entries, alerts, alert actions.

Each mirrors its JSON Schema file (schemas/timeline-entry.v1.json,
alert.v1.json, alert-action.v1.json), which stays the contract; these types
let mypy check that the code reading and writing them agrees on the names.
Enumerated values are typed `str`: their lists live once, in kernel.settings.CHANNELS,
domain.alerts (STATUSES, ACTIONS) and domain.rules.CATEGORIES.
They are TypedDicts, not dataclasses, because the records are JSON on the wire
and in Redis: a dict decoded by orjson is one already, with no copy per event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict


class TimelineEntry(TypedDict):
    event_id: str
    customer_id: str
    channel: str
    type: str
    occurred_at: str
    accepted_at: str
    payload: dict[str, Any]
    source: dict[str, Any]
    identity: NotRequired[dict[str, Any]]
    provisional: NotRequired[bool]
    linked_from: NotRequired[str]
    # The customer it was first filed under, when it is not the one holding it (merges).
    filed_under: NotRequired[str]
    sentiment: NotRequired[dict[str, Any]]
    # Account entries (cx.self-service.v1) only: who made the change, "customer:C-1".
    actor: NotRequired[str]


class AlertAction(TypedDict):
    alert_id: str
    action: str
    actor: str
    action_id: NotRequired[str]
    note: NotRequired[str | None]
    outcome: NotRequired[str]
    category: NotRequired[str]
    at: NotRequired[str]


class Alert(TypedDict):
    alert_id: str
    event: str
    status: str
    version: int
    kind: str
    customer_id: str
    # The survey fields are None on negative-interaction alerts (domain.negative).
    survey_event_id: str | None
    score: int | None
    scale_min: int | None
    scale_max: int | None
    category: str
    agent_id: str | None
    queue: str | None
    contact_id: str | None
    comment: str | None
    survey_occurred_at: str | None
    raised_at: str
    latency_ms: int
    # Timeline entries, the rated contact's with "rated": true added.
    context: list[Mapping[str, Any]]
    history: list[dict[str, Any]]
    category_rule: NotRequired[str | None]
    category_reasons: NotRequired[list[str]]
    categorised_by: NotRequired[str]
    contact_channel: NotRequired[str | None]
    reason_codes: NotRequired[list[str]]
    ack_deadline: NotRequired[str]
    rated_contact: NotRequired[TimelineEntry | None]
    acknowledged_at: NotRequired[str]
    acknowledged_by: NotRequired[str]
    escalated_at: NotRequired[str]
    callbacks: NotRequired[list[dict[str, Any]]]
    resolved_at: NotRequired[str]
    resolved_by: NotRequired[str]
    resolution_note: NotRequired[str | None]
    source: NotRequired[dict[str, Any] | None]
    # Negative-interaction alerts only (domain.negative).
    intent: NotRequired[str | None]
    signals: NotRequired[list[dict[str, Any]]]
    linked_alerts: NotRequired[list[str]]
    # Bottom-2-box alerts linked to an open negative-interaction alert.
    linked_alert_id: NotRequired[str]
    # The customer it was first filed under, when it is not the one holding it (merges).
    filed_under: NotRequired[str]
