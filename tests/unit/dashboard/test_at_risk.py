"""The agent page's "at risk" reasons (dashboard.at_risk) and their config key; no services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.at_risk import ago, at_risk, negative_recent, ordinal, signal_phrase
from dashboard.context import build_context
from dashboard.prompts import (
    AT_RISK_DAYS,
    AgentConfig,
    AgentConfigError,
    load_agent_config,
    parse_agent_config,
)
from tests.support.helpers import REPO

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def _at(delta: timedelta) -> str:
    return (NOW - delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _entry(n: int, ago_: timedelta, *, channel: str = "chat", label: str | None = "negative",
           score: float = -0.74, **payload: Any) -> dict:
    entry: dict[str, Any] = {"event_id": f"ev-{n}", "channel": channel, "type": f"{channel}.ended",
                             "occurred_at": _at(ago_), "customer_id": "C-1", "payload": payload}
    if label is not None:
        entry["sentiment"] = {"score": score, "label": label, "source": "model", "chars": 40}
    return entry


def _negative_alert(**extra: Any) -> dict:
    return {
        "alert_id": "AL-00000000000000000001", "kind": "negative_interaction", "status": "open",
        "raised_at": _at(timedelta(minutes=30)), "intent": "billing", "score": None,
        "scale_max": None, "comment": None, "category": "business_operations",
        "signals": [
            {"rule": "escalation_language", "event_id": "ev-1", "channel": "chat",
             "contact": "chat:CH-1", "occurred_at": _at(timedelta(hours=1)),
             "detail": "said 'ombudsman'"},
            {"rule": "repeat_contact", "event_id": "ev-1", "channel": "chat",
             "contact": "chat:CH-1", "occurred_at": _at(timedelta(hours=1)), "count": 3},
            # The same phrase twice (two chat lines) reads once.
            {"rule": "escalation_language", "event_id": "ev-2", "channel": "chat",
             "contact": "chat:CH-1", "occurred_at": _at(timedelta(hours=1)),
             "detail": "said 'ombudsman'"},
        ],
        **extra,
    }


def _survey_alert(status: str = "acknowledged") -> dict:
    return {"alert_id": "AL-00000000000000000002", "kind": "bottom_2_box", "status": status,
            "raised_at": _at(timedelta(days=2)), "score": 1, "scale_max": 5,
            "contact_channel": "call", "comment": "  they hung   up on me  "}


def test_a_happy_customer_is_not_at_risk() -> None:
    entries = [_entry(1, timedelta(hours=1), label="positive", score=0.8),
               _entry(2, timedelta(hours=2), label="neutral", score=0.0),
               _entry(3, timedelta(days=5), label="negative")]  # older than the window
    resolved = {**_negative_alert(), "status": "resolved"}
    assert at_risk(alerts=[resolved], entries=entries, now_ms=NOW_MS, within_days=3) is None
    assert at_risk(alerts=[], entries=[], now_ms=NOW_MS, within_days=3) is None


def test_an_open_negative_interaction_alert_gives_its_signals_in_words() -> None:
    risk = at_risk(alerts=[_negative_alert()], entries=[], now_ms=NOW_MS, within_days=3)
    assert risk is not None
    assert risk["reasons"] == [
        "Open negative-interaction alert: said 'ombudsman' on chat, 3rd contact about billing"]
    assert risk["open_alerts"] == [{
        "alert_id": "AL-00000000000000000001", "kind": "negative_interaction", "status": "open",
        "raised_at": _at(timedelta(minutes=30)),
        "reasons": ["said 'ombudsman' on chat", "3rd contact about billing"]}]
    assert risk["negative_recent"] == []


def test_open_alerts_newest_first_then_negative_contacts_with_how_long_ago() -> None:
    entries = [_entry(9, timedelta(hours=2), score=-0.74, chat_id="CH-9")]
    risk = at_risk(alerts=[_survey_alert(), _negative_alert()], entries=entries,
                   now_ms=NOW_MS, within_days=3)
    assert risk is not None
    assert risk["reasons"] == [
        "Open negative-interaction alert: said 'ombudsman' on chat, 3rd contact about billing",
        "Open bottom-2-box alert (acknowledged): scored their call contact 1/5, "
        "said 'they hung up on me'",
        "Negative chat 2 h ago (-0.74)",
    ]
    assert risk["negative_recent"] == [{
        "event_id": "ev-9", "channel": "chat", "type": "chat.ended",
        "occurred_at": _at(timedelta(hours=2)), "score": -0.74}]


def test_one_contact_counts_once_by_its_newest_scored_entry() -> None:
    entries = [  # newest first, as the timeline comes
        _entry(1, timedelta(minutes=5), label="neutral", score=0.0, chat_id="CH-1"),
        _entry(2, timedelta(minutes=9), score=-0.9, chat_id="CH-1"),  # calmer since: not counted
        _entry(3, timedelta(minutes=20), channel="email", score=-0.5, thread_id="T-1"),
        _entry(4, timedelta(minutes=40), channel="email", score=-0.8, thread_id="T-1"),
        _entry(5, timedelta(hours=3), channel="call", label=None),  # no words, no sentiment
    ]
    found = negative_recent(entries, now_ms=NOW_MS, within_days=1)
    assert [f["event_id"] for f in found] == ["ev-3"]


def test_many_negative_contacts_are_counted_after_the_newest_three() -> None:
    entries = [_entry(n, timedelta(hours=n), chat_id=f"CH-{n}") for n in range(1, 7)]
    risk = at_risk(alerts=[], entries=entries, now_ms=NOW_MS, within_days=1)
    assert risk is not None
    assert risk["reasons"][:3] == ["Negative chat 1 h ago (-0.74)", "Negative chat 2 h ago (-0.74)",
                                   "Negative chat 3 h ago (-0.74)"]
    assert risk["reasons"][3] == "3 more negative contacts in the last day"
    assert len(risk["negative_recent"]) == 6


def test_the_window_is_the_configured_days() -> None:
    entries = [_entry(1, timedelta(days=4), chat_id="CH-1")]
    assert at_risk(alerts=[], entries=entries, now_ms=NOW_MS, within_days=3) is None
    assert at_risk(alerts=[], entries=entries, now_ms=NOW_MS, within_days=5) is not None


@pytest.mark.parametrize(("signal", "expected"), [
    ({"rule": "negative_sentiment", "channel": "social", "score": -0.812},
     "negative words on social (-0.81)"),
    ({"rule": "many_transfers", "channel": "call", "count": 4}, "call transferred 4 times"),
    ({"rule": "long_wait", "channel": "call", "count": 95}, "waited 95 s on call"),
    ({"rule": "long_wait", "channel": "chat", "count": 900}, "waited 15 min on chat"),
    ({"rule": "abandoned_then_contact", "channel": "chat"},
     "came back on chat after an abandoned call"),
    ({"rule": "repeat_contact", "channel": "call", "count": 11}, "11th contact"),
    ({"rule": "brand_new_rule", "detail": "x"}, "brand new rule: x"),
    ({"rule": "escalation_language", "channel": "email", "detail": "cancel my contract"},
     "said 'cancel my contract' on email"),
])
def test_each_signal_reads_as_a_phrase(signal: dict, expected: str) -> None:
    assert signal_phrase(signal) == expected


def test_small_words() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st"]
    assert [ago(ms) for ms in (10_000, 12 * 60_000, 2 * 3_600_000, 3 * 86_400_000)] == [
        "just now", "12 min ago", "2 h ago", "3 days ago"]


def test_the_context_carries_at_risk_and_open_alerts_say_their_kind() -> None:
    config = AgentConfig(relevance={}, prompts=(), at_risk_days=3)
    common: dict[str, Any] = {"customer_id": "C-1", "profile": None, "intent": None,
                              "contact": None, "config": config, "now_ms": NOW_MS, "limit": 10}
    happy = build_context(entries=[], alerts=[], **common)
    assert happy["at_risk"] is None
    unhappy = build_context(entries=[], alerts=[_negative_alert()], **common)
    assert unhappy["at_risk"]["reasons"][0].startswith("Open negative-interaction alert")
    assert unhappy["open_alerts"][0]["kind"] == "negative_interaction"


def test_the_shipped_file_sets_the_window() -> None:
    config = load_agent_config(REPO / "config" / "agent_context.toml")
    assert config.at_risk_days == 3 == AT_RISK_DAYS
    assert parse_agent_config({}, "x.toml").at_risk_days == AT_RISK_DAYS
    assert parse_agent_config({"at_risk": {"within_days": 7}}, "x.toml").at_risk_days == 7


@pytest.mark.parametrize(("table", "message"), [
    ({"within_days": 0},
     "x.toml: at_risk: within_days must be a whole number of days from 1 to 90 (got 0)"),
    ({"within_days": True}, "within_days must be a whole number of days from 1 to 90 (got True)"),
    ({"within_days": "3"}, "(got '3')"),
    ({"within_day": 3}, "x.toml: at_risk: unknown key 'within_day' (allowed: within_days); "
                        "did you mean 'within_days'?"),
    (3, "x.toml: at_risk: must be a table like [at_risk] with within_days = 3"),
])
def test_a_wrong_window_is_refused_naming_the_key(table: Any, message: str) -> None:
    with pytest.raises(AgentConfigError) as error:
        parse_agent_config({"at_risk": table}, "x.toml")
    assert message in str(error.value)
