"""Negative-interaction alerts as pure values: raising, adding signals once, linking."""

from __future__ import annotations

from domain.negative import (
    MAX_LINKED,
    MAX_SIGNALS,
    holds_contact,
    is_full,
    negative_alert_id,
    new_negative_alert,
    new_signals,
    with_linked,
    with_signals,
)
from domain.records import TimelineEntry
from domain.rules import Classification
from schemas import validator

NOW = "2026-11-22T10:00:00.000Z"


def _entry(event_id: str = "E-1") -> TimelineEntry:
    return {"event_id": event_id, "customer_id": "C-1", "channel": "chat", "type": "chat.ended",
            "occurred_at": NOW, "accepted_at": NOW, "payload": {"chat_id": "CH-1",
                                                               "queue": "q", "agent_id": "A-1"},
            "source": {"topic": "cx.chat.v1", "partition": 0, "offset": 1}}


def _signal(rule: str = "negative_sentiment", contact: str = "chat:CH-1",
            event_id: str = "E-1") -> dict:
    return {"rule": rule, "event_id": event_id, "channel": "chat", "contact": contact,
            "occurred_at": NOW, "score": -0.8}


UNCLASSIFIED = Classification("unclassified", None, ())


def _alert(classification: Classification = UNCLASSIFIED) -> dict:
    return new_negative_alert(customer_id="C-1", intent="billing", signals=[_signal()],
                              trigger=_entry(), context=[_entry()],
                              classification=classification, raised_at=NOW, latency_ms=5,
                              ack_deadline=NOW)


def test_raised_alert_follows_the_contract() -> None:
    alert = _alert()
    validator("alert.v1")(alert)
    assert alert["alert_id"] == negative_alert_id("C-1", "billing", "E-1")
    assert alert["context"][0]["rated"] is True and alert["agent_id"] == "A-1"


def test_ids_differ_by_customer_intent_and_first_event() -> None:
    ids = {negative_alert_id(c, i, e) for c in ("C-1", "C-2") for i in ("billing", None)
           for e in ("E-1", "E-2")}
    assert len(ids) == 8


def test_a_signal_is_added_once_per_rule_and_contact() -> None:
    alert = _alert()
    assert with_signals(alert, [_signal(event_id="E-1b")], None, NOW) is None  # same contact
    changed = with_signals(alert, [_signal(), _signal("escalation_language")], None, NOW)
    assert changed is not None and changed["version"] == 2 and changed["event"] == "updated"
    assert [s["rule"] for s in changed["signals"]] == ["negative_sentiment", "escalation_language"]
    assert changed["history"][-1]["signals"] == ["escalation_language"]
    assert new_signals(None, [_signal(), _signal()]) == [_signal()]


def test_rules_categorise_an_unclassified_alert_later_but_never_override() -> None:
    later = Classification("skill", "many-transfers", ("2 transfers",))
    changed = with_signals(_alert(), [_signal("many_transfers", "call:K")], later, NOW)
    assert changed is not None and changed["category"] == "skill"
    decided = _alert(Classification("business_operations", "business-comment", ("bill",)))
    kept = with_signals(decided, [_signal("many_transfers", "call:K")], later, NOW)
    assert kept is not None and kept["category"] == "business_operations"


def test_linking_is_idempotent_and_contacts_match_by_event_or_channel_id() -> None:
    alert = _alert()
    linked = with_linked(alert, "AL-" + "0" * 20, NOW)
    assert linked is not None and linked["linked_alerts"] == ["AL-" + "0" * 20]
    assert with_linked(linked, "AL-" + "0" * 20, NOW) is None
    assert holds_contact(alert, "E-1") and holds_contact(alert, "CH-1")
    assert not holds_contact(alert, "CH-2") and not holds_contact(alert, "chat")


def test_an_alert_nobody_works_stops_growing_at_its_bounds() -> None:
    alert = _alert()
    while not is_full(alert):
        n = len(alert["signals"])
        changed = with_signals(alert, [_signal(contact=f"chat:{n}"), _signal(contact=f"chat:{n}b")],
                               None, NOW)
        assert changed is not None
        alert = changed
    assert len(alert["signals"]) == MAX_SIGNALS and len(alert["history"]) <= MAX_SIGNALS
    assert with_signals(alert, [_signal(contact="chat:later")], None, NOW) is None
    validator("alert.v1")(alert)
    for n in range(MAX_LINKED + 3):
        alert = with_linked(alert, f"AL-{n:020x}", NOW) or alert
    assert len(alert["linked_alerts"]) == MAX_LINKED
