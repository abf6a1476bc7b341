"""apply_action, the alert lifecycle's pure step: messages and re-categorisation."""

from __future__ import annotations

from domain.alerts import ActionRejected, apply_action

ACTORS = frozenset({"adv-ana", "adv-ben"})
NOW = "2026-12-01T20:00:00.000Z"


def _alert(**fields: object) -> dict:
    return {"alert_id": "AL-1", "status": "acknowledged", "version": 2,
            "category": "business_operations", "category_rule": "price-complaints",
            "category_reasons": ["comment contains 'price'"],
            "history": [{"event": "raised", "at": NOW}], **fields}


def _resolve(alert: dict, **fields: object) -> dict | ActionRejected:
    return apply_action(alert, {"alert_id": "AL-1", "action": "resolve", "actor": "adv-ana",
                                "action_id": "x1", **fields}, ACTORS, NOW)


def test_resolving_a_resolved_alert_says_it_is_already_resolved() -> None:
    done = _alert(status="resolved", resolved_by="adv-ben")
    for kind in ("resolve", "callback"):
        refused = apply_action(done, {"alert_id": "AL-1", "action": kind, "actor": "adv-ana",
                                      "outcome": "reached"}, ACTORS, NOW)
        assert isinstance(refused, ActionRejected)
        assert refused.reason == "invalid_transition"
        assert "already resolved by adv-ben" in refused.message
        assert "acknowledged first" not in refused.message
    still_open = _resolve(_alert(status="open"))
    assert isinstance(still_open, ActionRejected)
    assert "acknowledged first" in still_open.message


def test_a_new_category_on_resolve_says_who_decided_and_what_the_rule_had_said() -> None:
    resolved = _resolve(_alert(), category="skill")
    assert isinstance(resolved, dict)
    assert resolved["category"] == "skill"
    assert resolved["categorised_by"] == "adv-ana"
    assert resolved["category_rule"] is None and resolved["category_reasons"] == []
    step = resolved["history"][-1]
    assert step["event"] == "resolved" and step["actor"] == "adv-ana"
    assert (step["category_from"], step["category_to"], step["rule_from"]) == \
        ("business_operations", "skill", "price-complaints")
    assert len(resolved["history"]) == 2  # one line per published event


def test_resolving_with_the_same_category_keeps_the_rule() -> None:
    resolved = _resolve(_alert(), category="business_operations")
    assert isinstance(resolved, dict)
    assert resolved["category_rule"] == "price-complaints"
    assert "categorised_by" not in resolved
    assert "category_from" not in resolved["history"][-1]


def test_the_cli_shows_who_re_categorised_an_alert_not_the_rule() -> None:
    import io

    from cxt.alerts import print_alert

    resolved = _resolve(_alert(score=1, scale_max=5, customer_id="C-1", raised_at=NOW,
                               latency_ms=5, ack_deadline=NOW, context=[]), category="skill")
    assert isinstance(resolved, dict)
    out = io.StringIO()
    print_alert(resolved, out)
    text = out.getvalue()
    assert "categorised by adv-ana" in text
    assert "categorised by rule" not in text
    assert "resolved by adv-ana (category business_operations -> skill)" in text


def test_resolving_an_unclassified_alert_needs_a_category() -> None:
    unclassified = _alert(category="unclassified", category_rule=None, category_reasons=[])
    refused = _resolve(unclassified)
    assert isinstance(refused, ActionRejected)
    assert refused.reason == "category_required"
    assert refused.message == ("cannot resolve alert AL-1: its category is unclassified; pass a "
                               "category, one of skill, business_operations, "
                               "customer_expectation")
    # Naming unclassified is no answer either, whatever the rules had said.
    for alert in (unclassified, _alert()):
        named = _resolve(alert, category="unclassified")
        assert isinstance(named, ActionRejected) and named.reason == "category_required"
    resolved = _resolve(unclassified, category="customer_expectation")
    assert isinstance(resolved, dict)
    assert (resolved["status"], resolved["category"]) == ("resolved", "customer_expectation")
    assert resolved["history"][-1]["category_from"] == "unclassified"


def test_a_categorised_alert_resolves_without_naming_one() -> None:
    resolved = _resolve(_alert())
    assert isinstance(resolved, dict) and resolved["category"] == "business_operations"


def test_the_status_is_checked_before_the_category() -> None:
    # Acknowledging comes first: that is what an advisor needs to hear first.
    refused = _resolve(_alert(status="open", category="unclassified"))
    assert isinstance(refused, ActionRejected) and refused.reason == "invalid_transition"
