"""The agent view's context: relevance, ranking, open alerts (dashboard.context); no services."""

from __future__ import annotations

import copy
import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxt.traffic import EMAIL_SUBJECTS, INTENTS, SOCIAL_TEXTS, TrafficGenerator, make_customers
from dashboard.context import (
    OPEN_ALERT_FIELDS,
    OPEN_STATUSES,
    build_context,
    display_fields,
    entries_by_id,
    format_value,
    humanise,
    is_relevant,
    mask,
    merge_contacts,
    open_alert_summary,
    rank,
)
from dashboard.prompts import AgentConfig, CustomerField, load_agent_config, parse_agent_config
from tests.support.helpers import REPO

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.fixture(scope="module")
def shipped() -> AgentConfig:
    return load_agent_config(REPO / "config" / "agent_context.toml")


CONFIG = parse_agent_config({
    "relevance": {"billing": {"keywords": ["bill", "refund", "charge", "direct debit"]},
                  "delivery": {"keywords": ["parcel", "delay"]}},
    "prompt": [{"id": "b2b", "when": "recent_bottom_2_box", "within_days": 30, "priority": 1,
                "message": "rated {score}/{scale_max}"}],
}, "test.toml")


def entry(event_id: str, channel: str, kind: str, minutes_ago: float, **payload: Any) -> dict:
    moment = (NOW - timedelta(minutes=minutes_ago)).isoformat().replace("+00:00", "Z")
    return {"event_id": event_id, "customer_id": "C-000001", "channel": channel,
            "type": f"{channel}.{kind}", "occurred_at": moment, "accepted_at": moment,
            "payload": payload}


def alert(survey_id: str, contact_id: str | None, status: str = "open", **extra: Any) -> dict:
    return {"alert_id": f"AL-{survey_id}", "status": status, "version": 1, "score": 1,
            "scale_min": 1, "scale_max": 5, "raised_at": "2026-11-22T10:00:00.000Z",
            "comment": "rude", "category": "skill", "survey_event_id": survey_id,
            "contact_id": contact_id, "customer_id": "C-000001", "history": [], **extra}


# --- relevance ------------------------------------------------------------------

def test_relevant_by_payload_intent() -> None:
    e = entry("c1", "call", "ended", 5, intent="Billing")
    assert is_relevant(e, "billing", CONFIG)
    assert is_relevant(e, " BILLING ", CONFIG)
    assert not is_relevant(e, "technical", CONFIG)
    assert not is_relevant(e, None, CONFIG)
    assert not is_relevant(e, "", CONFIG)


def test_relevant_by_ivr_path() -> None:
    e = entry("c1", "call", "ended", 5, ivr_path=["main", "billing", "disputes"])
    assert is_relevant(e, "billing", CONFIG)
    assert is_relevant(e, "disputes", CONFIG)  # an intent without keywords still matches
    assert not is_relevant(e, "bill", CONFIG)  # a menu name is matched whole


@pytest.mark.parametrize(("payload", "intent", "relevant"), [
    ({"subject": "Question about my BILL"}, "billing", True),
    ({"subject": "Re: Billing query"}, "billing", True),  # word start: bill -> billing
    ({"subject": "rebilled twice"}, "billing", False),  # not at a word start
    ({"comment": "I was charged twice"}, "billing", True),
    ({"comment": "cancel my direct\n debit"}, "billing", True),  # several words, any space
    ({"comment": "direct debits"}, "billing", True),
    ({"comment": "direct mail"}, "billing", False),
    ({"text": "where's my refund?"}, "billing", True),
    ({"reason_codes": ["billing_error"]}, "billing", True),
    ({"reason_codes": ["delivery_delay"]}, "delivery", True),  # codes read with spaces
    ({"reason_codes": ["agent_attitude"]}, "billing", False),
    ({"subject": "Parcel not arrived"}, "billing", False),
    ({"subject": "Parcel not arrived"}, "delivery", True),
    ({"queue": "billing-uk", "agent_id": "bill"}, "billing", False),  # not searched fields
    ({"subject": None, "comment": 3, "text": ["bill"], "reason_codes": "bill"}, "billing", False),
    ({"subject": "bill"}, "technical", False),  # an intent without keywords
])
def test_relevant_by_keyword(payload: dict, intent: str, relevant: bool) -> None:
    assert is_relevant(entry("x", "email", "received", 5, **payload), intent, CONFIG) is relevant


def test_survey_relevant_through_the_contact_it_rates() -> None:
    rated = entry("c1", "call", "ended", 30, intent="billing")
    other = entry("c2", "chat", "ended", 20, intent="delivery")
    survey = entry("s1", "survey", "response", 10, score=2, contact_id="c1", comment="meh")
    by_id = {e["event_id"]: e for e in (rated, other)}
    assert is_relevant(survey, "billing", CONFIG, by_id=by_id)
    assert not is_relevant(survey, "billing", CONFIG)  # without the timeline it cannot tell
    assert not is_relevant(survey, "delivery", CONFIG, by_id=by_id)
    survey["payload"]["contact_id"] = "c2"
    assert is_relevant(survey, "delivery", CONFIG, by_id=by_id)
    survey["payload"]["contact_id"] = "missing"
    assert not is_relevant(survey, "delivery", CONFIG, by_id=by_id)


@pytest.mark.parametrize("broken", [
    {}, {"payload": None}, {"payload": "bill"}, {"payload": {"ivr_path": "billing"}},
    {"payload": {"ivr_path": [None, 3]}}, {"channel": "survey", "payload": {"contact_id": 5}},
])
def test_broken_entries_are_not_relevant(broken: dict) -> None:
    assert not is_relevant(broken, "billing", CONFIG, by_id={"5": {"payload": {"intent": "x"}}})


def test_shipped_keywords_match_the_demo_traffic(shipped: AgentConfig) -> None:
    # Each demo e-mail subject is relevant to its own intent and to no other.
    for intent, subjects in EMAIL_SUBJECTS.items():
        for subject in subjects:
            for shown in (subject, f"Re: {subject}"):
                e = entry("m", "email", "received", 1, subject=shown)
                hits = [i for i in INTENTS if is_relevant(e, i, shipped)]
                assert hits == [intent], shown
    # Every social text that complains about something is found by some intent.
    found = [t for t, _ in SOCIAL_TEXTS
             if any(is_relevant(entry("p", "social", "post", 1, text=t), i, shipped)
                    for i in INTENTS)]
    assert len(found) == len(SOCIAL_TEXTS)


# --- ranking ---------------------------------------------------------------------

def timeline() -> list[dict]:
    """Newest first, as the store returns it."""
    return [
        entry("trigger", "call", "started", 0, intent="billing", call_id="K9"),
        entry("post", "social", "post", 10, text="lovely weather"),
        entry("s-bill", "survey", "response", 20, score=4, contact_id="c-bill"),
        entry("c-bill", "call", "ended", 30, intent="billing", call_id="K1"),
        entry("s-alert", "survey", "response", 40, score=1, contact_id="c-tech",
              comment="rude"),
        entry("mail", "email", "received", 50, subject="Refund request", intent="account"),
        entry("c-tech", "call", "ended", 60, intent="technical", call_id="K2"),
        entry("old", "chat", "ended", 70, intent="sales", chat_id="H1"),
    ]


def test_rank_groups_and_order() -> None:
    ranked = rank(timeline(), intent="billing", contact_event_id="trigger",
                  open_alerts=[alert("s-alert", "c-tech")], config=CONFIG)
    assert [(e["event_id"], e["relevance"]) for e in ranked] == [
        ("s-bill", "intent"),  # rates c-bill
        ("c-bill", "intent"),
        ("mail", "intent"),  # keyword "refund"
        ("s-alert", "alert"),
        ("c-tech", "alert"),
        ("post", "other"),
        ("old", "other"),
    ]
    flags = {e["event_id"]: e["flags"] for e in ranked}
    assert flags["s-alert"] == ["open_alert", "bottom_2_box"]
    assert flags["c-tech"] == ["open_alert"]
    assert flags["s-bill"] == flags["post"] == []


def test_open_alert_entries_keep_their_intent_group() -> None:
    entries = timeline()
    ranked = rank(entries, intent="technical", contact_event_id="trigger",
                  open_alerts=[alert("s-alert", "c-tech")], config=CONFIG)
    groups = [(e["event_id"], e["relevance"], e["flags"]) for e in ranked]
    assert groups[:2] == [("s-alert", "intent", ["open_alert", "bottom_2_box"]),
                          ("c-tech", "intent", ["open_alert"])]
    assert all(r == "other" for _, r, _ in groups[2:])


def test_rank_only_open_alerts_count() -> None:
    for status in ("open", "escalated", "acknowledged"):
        ranked = rank(timeline(), intent="sales", contact_event_id=None,
                      open_alerts=[alert("s-alert", "c-tech", status)], config=CONFIG)
        assert [e["event_id"] for e in ranked if e["relevance"] == "alert"] == [
            "s-alert", "c-tech"], status
    ranked = rank(timeline(), intent="sales", contact_event_id=None,
                  open_alerts=[alert("s-alert", "c-tech", "resolved")], config=CONFIG)
    assert not [e for e in ranked if e["relevance"] == "alert" or "open_alert" in e["flags"]]


def test_rank_without_intent_or_trigger() -> None:
    ranked = rank(timeline(), intent=None, contact_event_id=None,
                  open_alerts=[alert("s-alert", None)], config=CONFIG)
    assert [e["event_id"] for e in ranked] == [
        "s-alert", "trigger", "post", "s-bill", "c-bill", "mail", "c-tech", "old"]
    assert ranked[0]["relevance"] == "alert"
    assert {e["relevance"] for e in ranked[1:]} == {"other"}


def test_rank_does_not_mutate_its_inputs() -> None:
    entries = timeline()
    alerts = [alert("s-alert", "c-tech")]
    before = copy.deepcopy((entries, alerts))
    ranked = rank(entries, intent="billing", contact_event_id="trigger", open_alerts=alerts,
                  config=CONFIG)
    assert (entries, alerts) == before
    assert all("relevance" not in e and "flags" not in e for e in entries)
    assert ranked[0] is not entries[2]


def test_rank_skips_non_dicts_and_survives_bad_entries() -> None:
    entries = [*timeline(), "junk", None, {"event_id": "bare"}]  # type: ignore[list-item]
    ranked = rank(entries, intent="billing", contact_event_id="trigger", open_alerts=[],
                  config=CONFIG)
    assert ranked[-1] == {"event_id": "bare", "relevance": "other", "flags": []}
    assert len(ranked) == len(timeline())  # 8 - trigger + bare


def test_survey_without_contact_id_is_not_tied_to_an_entry_without_event_id() -> None:
    no_id = {"channel": "call", "payload": {"intent": "billing"}}
    unrated = entry("s1", "survey", "response", 1, score=3)
    ranked = rank([unrated, no_id], intent="billing", contact_event_id=None, open_alerts=[],
                  config=CONFIG)
    assert [e.get("event_id") for e in ranked] == [None, "s1"]
    assert [e["relevance"] for e in ranked] == ["intent", "other"]


# --- open alerts and the whole context ----------------------------------------------

def test_open_alert_summary_fields() -> None:
    full = alert("s-alert", "c-tech", "acknowledged", rated_contact={"event_id": "c-tech"})
    summary = open_alert_summary(full)
    assert list(summary) == list(OPEN_ALERT_FIELDS) == [
        "alert_id", "kind", "status", "score", "scale_max", "raised_at", "comment",
        "category", "survey_event_id", "contact_id"]
    assert summary["status"] == "acknowledged" and summary["contact_id"] == "c-tech"
    assert open_alert_summary({"alert_id": "AL-x"})["comment"] is None
    assert OPEN_STATUSES == ("open", "escalated", "acknowledged")


def context(**changes: Any) -> dict:
    entries = timeline()
    arguments: dict[str, Any] = {
        "customer_id": "C-000001", "profile": {"customer_id": "C-000001", "name": "Ada"},
        "entries": entries, "alerts": [alert("s-alert", "c-tech")], "intent": None,
        "contact": entries[0], "config": CONFIG, "now_ms": NOW_MS, "limit": 30,
    }
    return build_context(**(arguments | changes))


def test_build_context_structure() -> None:
    result = context()
    assert list(result) == ["customer_id", "customer", "customer_fields", "intent", "contact",
                            "notes", "more_notes", "preferences", "contact_hours_now",
                            "prompts", "prompts_held_back", "open_alerts", "at_risk", "events",
                            "counts"]
    assert result["customer_id"] == "C-000001"
    assert result["customer"] == {"customer_id": "C-000001", "name": "Ada"}
    assert result["intent"] == "billing"  # taken from the contact
    assert result["contact"]["event_id"] == "trigger"
    assert result["prompts"] == [{"rule": "b2b", "message": "rated 1/5", "priority": 1,
                                  "tone": "info"}]
    assert result["open_alerts"] == [open_alert_summary(alert("s-alert", "c-tech"))]
    assert "trigger" not in [e["event_id"] for e in result["events"]]
    assert result["counts"] == {"total": 7, "relevant": 3}


def test_build_context_explicit_intent_wins_over_the_contacts() -> None:
    result = context(intent="Delivery")
    assert result["intent"] == "delivery"
    assert result["counts"] == {"total": 7, "relevant": 0}


def test_build_context_limit_cuts_events_not_counts() -> None:
    result = context(limit=2)
    assert [e["event_id"] for e in result["events"]] == ["s-bill", "c-bill"]
    assert result["counts"] == {"total": 7, "relevant": 3}
    assert context(limit=0)["events"] == []
    assert len(context(limit=100)["events"]) == 7


def test_build_context_without_contact_profile_or_alerts() -> None:
    result = context(contact=None, profile=None, alerts=[], intent=None)
    assert result["intent"] is None and result["contact"] is None and result["customer"] is None
    assert result["open_alerts"] == []
    assert result["counts"] == {"total": 8, "relevant": 0}
    assert [e["relevance"] for e in result["events"]] == ["other"] * 8


def test_build_context_lists_only_open_alerts_newest_first() -> None:
    alerts = [
        alert("s1", None, "resolved", raised_at="2026-11-22T11:00:00.000Z"),
        alert("s2", None, "acknowledged", raised_at="2026-11-20T09:00:00.000Z"),
        alert("s3", None, "escalated", raised_at="2026-11-21T09:00:00.000Z"),
        alert("s4", None, "open", raised_at="2026-11-19T09:00:00.000Z"),
        "junk",
    ]
    result = context(alerts=alerts)
    assert [(a["survey_event_id"], a["status"]) for a in result["open_alerts"]] == [
        ("s3", "escalated"), ("s2", "acknowledged"), ("s4", "open")]


def test_build_context_on_a_long_simulated_timeline(shipped: AgentConfig) -> None:
    customers = make_customers(50, seed=7)
    generator = TrafficGenerator(customers, seed=7, now=lambda: NOW)
    entries: list[dict] = []
    rng = random.Random(7)
    for index, (channel, envelope) in enumerate(generator.take(1000)):
        moment = NOW - timedelta(minutes=index * 13 + rng.randrange(5))
        entries.append({
            "event_id": envelope["event_id"], "customer_id": "C-000001", "channel": channel,
            "type": envelope["type"], "occurred_at": moment.isoformat().replace("+00:00", "Z"),
            "accepted_at": moment.isoformat().replace("+00:00", "Z"),
            "payload": envelope["payload"],
        })
    contact = next(e for e in entries if e["type"] == "call.started")
    alerts = [alert(e["event_id"], e["payload"].get("contact_id"))
              for e in entries if e["channel"] == "survey"][:3]
    profile = {**customers[0], "segment": "vip", "plan_usage_pct": 12}
    arguments: dict[str, Any] = {
        "customer_id": "C-000001", "profile": profile, "entries": entries, "alerts": alerts,
        "intent": None, "contact": contact, "config": shipped, "now_ms": NOW_MS, "limit": 30}
    timings = []
    for _ in range(5):  # the first run also compiles the keyword patterns
        started = time.perf_counter()
        result = build_context(**arguments)
        timings.append((time.perf_counter() - started) * 1000)
    # Printed for a person (pytest -s); speed is asserted by the benchmark, not here.
    print(f"\nbuild_context on {len(entries)} entries: best {min(timings):.2f} ms, "
          f"first {timings[0]:.2f} ms")

    intent = contact["payload"]["intent"]
    assert result["intent"] == intent
    assert result["counts"]["total"] == 999
    events = result["events"]
    assert len(events) == 30
    relevant = [e for e in events if e["relevance"] == "intent"]
    by_id = entries_by_id(entries)
    assert relevant and all(is_relevant(e, intent, shipped, by_id=by_id) for e in relevant)
    order = {"intent": 0, "alert": 1, "other": 2}
    assert [order[e["relevance"]] for e in events] == sorted(order[e["relevance"]]
                                                            for e in events)
    assert {p["rule"] for p in result["prompts"]} >= {"vip-customer", "plan-under-used"}


# --- one call, one row ------------------------------------------------------------------

def a_call() -> list[dict]:
    """Newest first: a call that started, ended 5 minutes later, and a chat started after."""
    return [
        entry("chat-1", "chat", "started", 2, chat_id="H5", intent="technical"),
        entry("end-1", "call", "ended", 10, call_id="K7", intent="billing", outcome="resolved",
              handle_seconds=287, transfers=None),
        entry("start-1", "call", "started", 15, call_id="K7", intent="billing",
              queue="billing-uk", transfers=0, ivr_path=["main", "billing"]),
    ]


def test_started_and_ended_of_one_call_are_one_contact() -> None:
    ranked = rank(a_call(), intent="billing", contact_event_id=None, open_alerts=[],
                  config=CONFIG)
    assert [(e["event_id"], e["relevance"]) for e in ranked] == [
        ("end-1", "intent"), ("chat-1", "other")]
    call = ranked[0]
    assert call["type"] == "call.ended"
    assert call["merged"] == {
        "event_ids": ["end-1", "start-1"], "types": ["call.ended", "call.started"],
        "started_at": entry("x", "call", "started", 15)["occurred_at"],
        "ended_at": entry("x", "call", "ended", 10)["occurred_at"],
        "duration_seconds": 287, "outcome": "resolved"}
    # The end's values win; what only the start said (queue, IVR path) is kept, and a
    # null at the end does not hide the start's value.
    assert call["payload"]["queue"] == "billing-uk"
    assert call["payload"]["ivr_path"] == ["main", "billing"]
    assert call["payload"]["transfers"] == 0
    assert "merged" not in ranked[1]


def test_duration_from_the_times_without_handle_seconds_and_none_while_under_way() -> None:
    entries = a_call()
    del entries[1]["payload"]["handle_seconds"]
    [call] = [e for e in rank(entries, intent=None, contact_event_id=None, open_alerts=[],
                              config=CONFIG) if e["channel"] == "call"]
    assert call["merged"]["duration_seconds"] == 300.0
    under_way = [entries[2], {**entries[2], "event_id": "again"}]
    [call] = rank(under_way, intent=None, contact_event_id=None, open_alerts=[], config=CONFIG)
    assert call["merged"]["ended_at"] is None
    assert call["merged"]["duration_seconds"] is None and call["merged"]["outcome"] is None


def test_merge_keeps_mail_threads_apart_and_entries_without_an_id_alone() -> None:
    entries = [
        entry("m2", "email", "sent", 1, thread_id="T1"),
        entry("m1", "email", "received", 2, thread_id="T1"),
        entry("c2", "call", "ended", 3),  # no call_id: nothing to join it by
        entry("c1", "call", "started", 4),
        *a_call(),
    ]
    groups = [[e["event_id"] for e in c] for c in merge_contacts([*entries, "junk"])]
    assert groups == [["m2"], ["m1"], ["c2"], ["c1"], ["chat-1"], ["end-1", "start-1"]]


def test_the_call_being_taken_is_left_out_with_its_other_entries() -> None:
    entries = a_call()
    ranked = rank(entries, intent="billing", contact_event_id="start-1", open_alerts=[],
                  config=CONFIG)
    assert [e["event_id"] for e in ranked] == ["chat-1"]


def test_a_merged_call_is_tied_to_an_alert_and_a_survey_by_any_of_its_ids() -> None:
    entries = [entry("s1", "survey", "response", 1, score=1, contact_id="K7"), *a_call()]
    ranked = rank(entries, intent="billing", contact_event_id=None, open_alerts=[],
                  config=CONFIG)
    assert [(e["event_id"], e["relevance"]) for e in ranked] == [
        ("s1", "intent"), ("end-1", "intent"), ("chat-1", "other")]
    for rated in ("start-1", "K7"):
        ranked = rank(a_call(), intent="delivery", contact_event_id=None,
                      open_alerts=[alert("s9", rated)], config=CONFIG)
        assert [(e["event_id"], e["relevance"]) for e in ranked] == [
            ("end-1", "alert"), ("chat-1", "other")], rated
        assert ranked[0]["flags"] == ["open_alert"]


def test_a_single_entry_contact_is_tied_by_its_channel_id() -> None:
    # Survey tools name the rated contact by the channel's own id (issue 12): a lone
    # call.ended, an e-mail or a post named so must be tied as an event id would be.
    lone = [entry("end-9", "call", "ended", 5, call_id="nt9", intent="billing"),
            entry("mail-1", "email", "received", 9, message_id="m-1", thread_id="t-1"),
            entry("chat-2", "chat", "ended", 20, chat_id="ch-2")]
    survey = entry("s2", "survey", "response", 1, score=1, contact_id="nt9")
    ranked = rank([survey, *lone], intent="billing", contact_event_id=None, open_alerts=[],
                  config=CONFIG)
    assert [(e["event_id"], e["relevance"]) for e in ranked][:2] == [
        ("s2", "intent"), ("end-9", "intent")]
    for rated, tied in (("nt9", "end-9"), ("t-1", "mail-1"), ("m-1", "mail-1"),
                        ("ch-2", "chat-2")):
        ranked = rank(lone, intent="delivery", contact_event_id=None,
                      open_alerts=[alert("s9", rated)], config=CONFIG)
        assert ranked[0]["event_id"] == tied and ranked[0]["relevance"] == "alert", rated


def test_counts_count_contacts_not_entries() -> None:
    result = context(entries=a_call(), contact=None, intent="billing")
    assert result["counts"] == {"total": 2, "relevant": 1}


# --- masking ---------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "masked"), [
    ("+447700900123", "+44 \u2022\u2022\u2022\u2022 \u2022\u20220123"),
    ("+44 7700 900123", "+44 \u2022\u2022\u2022\u2022 \u2022\u20220123"),
    ("+35385123456", "+35 \u2022\u2022\u2022\u2022 \u20223456"),
    ("+12025550123", "+12 \u2022\u2022\u2022\u2022 \u20220123"),
    ("+1234567", "\u2022\u2022\u2022\u2022\u202267"),
    ("ada.lovelace.1@example.org", "a\u2022\u2022@example.org"),
    (" Bo@Example.org ", "B\u2022\u2022@Example.org"),
    ("@example.org", "\u2022\u2022@example.org"),
])
def test_mask(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_phones_and_emails_never_reach_the_agent_whole() -> None:
    phone, email = "+447700900123", "ada.lovelace.1@example.org"
    profile = {"customer_id": "C-000001", "name": "Ada", "identifiers": {
        "phones": [phone], "emails": [email], "social": [{"network": "x", "handle": "@ada"}]}}
    entries = [{**entry("e1", "email", "received", 1, subject="hi"),
                "identity": {"email": email}}, *timeline()]
    trigger = {**entries[1], "identity": {"phone": phone}}
    result = context(profile=profile, entries=entries, contact=trigger)
    text = repr(result)
    assert phone not in text and email not in text and "900123" not in text
    assert result["customer"]["identifiers"] == {
        "phones": ["+44 \u2022\u2022\u2022\u2022 \u2022\u20220123"],
        "emails": ["a\u2022\u2022@example.org"],
        "social": [{"network": "x", "handle": "@ada"}]}
    # The entries' own identity goes: the card has the customer's, masked.
    assert "identity" not in result["contact"]
    assert all("identity" not in e for e in result["events"])
    assert entries[0]["identity"] == {"email": email}
    assert profile["identifiers"]["phones"] == [phone]  # the input is not changed


# --- record fields -----------------------------------------------------------------------

SHIPPED_DEMO = {"customer_id": "C-000004", "name": "Ada Lovelace",
                "identifiers": {"phones": ["+447700900004"]}, "segment": "vip", "plan": "plus",
                "region": "london", "customer_since": "2014-03-02",
                "lifetime_value_gbp": 1234.5, "marketing_consent": False, "plan_usage_pct": 4,
                "tenure_flag": "x"}


def test_shipped_fields_give_labels_and_units(shipped: AgentConfig) -> None:
    shown = display_fields(SHIPPED_DEMO, shipped.fields, NOW_MS)
    assert [(f["label"], f["text"]) for f in shown] == [
        ("Segment", "vip"), ("Plan", "plus"), ("Plan usage", "4%"),
        ("Lifetime value", "\u00a31,234.50"), ("Region", "london"),
        ("Customer since", "2014-03-02 (12 years)"), ("Marketing consent", "no"),
        ("Tenure flag", "x")]
    assert shown[2] == {"field": "plan_usage_pct", "label": "Plan usage", "value": 4,
                        "text": "4%"}
    assert display_fields(None, shipped.fields, NOW_MS) == []


@pytest.mark.parametrize(("value", "spec", "text"), [
    (4, CustomerField("U", "percent"), "4%"),
    ("12%", CustomerField("U", "percent"), "12%"),
    (12.345, CustomerField("U", "percent", decimals=1), "12.3%"),
    (-12.5, CustomerField("V", "money", "\u00a3"), "-\u00a312.50"),
    ("1,200", CustomerField("V", "money", "$", 0), "$1,200"),
    (36, CustomerField("T", "number", "months"), "36 months"),
    (1234567, CustomerField("T", "number"), "1,234,567"),
    ("n/a", CustomerField("T", "number", "months"), "n/a"),  # as sent when it is no number
    (True, CustomerField("T", "number"), "yes"),
    (True, CustomerField("C", "yes_no"), "yes"),
    ("2026-11-22", CustomerField("S", "date"), "2026-11-22 (under a year)"),
    ("2025-11-22", CustomerField("S", "date"), "2025-11-22 (1 year)"),
    ("soon", CustomerField("S", "date"), "soon"),
    (None, CustomerField("S"), None),
    ("", CustomerField("S"), None),
    (["a", "b"], CustomerField("S"), "a, b"),
    ({"k": 1}, CustomerField("S"), '{"k": 1}'),
])
def test_format_value(value: Any, spec: CustomerField, text: str | None) -> None:
    assert format_value(value, spec, NOW_MS) == text


def test_unconfigured_fields_get_a_humanised_name() -> None:
    assert humanise("lifetime_value_gbp") == "Lifetime value gbp"
    assert humanise("__x__y") == "X y"
    config = parse_agent_config({"fields": {"b": {"label": "Bee"}}}, "t.toml")
    shown = display_fields({"customer_id": "C", "name": "N", "a_b": 1, "b": 2, "c": None},
                           config.fields, NOW_MS)
    assert [(f["field"], f["label"], f["text"]) for f in shown] == [
        ("b", "Bee", "2"), ("a_b", "A b", "1"), ("c", "C", None)]


# --- robustness --------------------------------------------------------------------------

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
_entries = st.lists(st.fixed_dictionaries(
    {"event_id": st.text(max_size=3), "channel": st.sampled_from(["call", "chat", "email", "x"]),
     "type": st.sampled_from(["call.started", "call.ended", "chat.ended", "x"]),
     "occurred_at": st.sampled_from(["2026-11-22T10:00:00Z", "2026-11-22T10:05:00Z", "soon"]),
     "payload": st.one_of(_json, st.fixed_dictionaries(
         {"call_id": st.sampled_from(["K1", "K2", 3]), "chat_id": st.sampled_from(["K1", None]),
          "handle_seconds": _json, "outcome": _json}))}), max_size=8)


@settings(max_examples=200, deadline=None)
@given(profile=st.dictionaries(st.text(max_size=6), _json, max_size=6), entries=_entries,
       identifiers=_json)
def test_any_record_and_timeline_give_a_context(profile: dict, entries: list[dict],
                                                identifiers: Any, shipped: AgentConfig) -> None:
    record = {**profile, "identifiers": identifiers}
    result = context(profile=record, entries=entries, contact=None, config=shipped)
    assert len(result["customer_fields"]) == len(
        [k for k in record if k not in ("customer_id", "name", "identifiers")])
    assert result["counts"]["total"] <= len(entries)
