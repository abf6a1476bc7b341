"""Agent prompts and their configuration file (dashboard.prompts); no services needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dashboard.prompts import (
    COMMON_PLACEHOLDERS,
    TONES,
    WHEN_PLACEHOLDERS,
    AgentConfig,
    AgentConfigError,
    CustomerField,
    PromptRule,
    evaluate_prompts,
    fill,
    load_agent_config,
    parse_agent_config,
)
from domain.contacts import contact_key, parse_ms
from tests.support.helpers import REPO

SHIPPED = REPO / "config" / "agent_context.toml"
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)


def at(delta: timedelta) -> str:
    return (NOW - delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def entry(event_id: str, channel: str, kind: str, ago: timedelta, **payload: Any) -> dict:
    return {"event_id": event_id, "customer_id": "C-000001", "channel": channel,
            "type": f"{channel}.{kind}", "occurred_at": at(ago), "accepted_at": at(ago),
            "payload": payload}


def survey(event_id: str, ago: timedelta, score: int, **payload: Any) -> dict:
    return entry(event_id, "survey", "response", ago, score=score, **payload)


def call(event_id: str, ago: timedelta, intent: str = "billing", kind: str = "ended",
         call_id: str | None = None) -> dict:
    return entry(event_id, "call", kind, ago, call_id=call_id or event_id, intent=intent,
                 queue="billing-uk", agent_id="A-007", ivr_path=["main", intent])


def config_of(*prompts: dict, relevance: dict | None = None) -> AgentConfig:
    return parse_agent_config({"relevance": relevance or {}, "prompt": list(prompts)}, "t.toml")


def run(config: AgentConfig, *, entries: list[dict] | None = None, customer: dict | None = None,
        intent: str | None = None, contact: dict | None = None) -> list[dict]:
    return evaluate_prompts(config, customer=customer, entries=entries or [], intent=intent,
                            contact=contact, now_ms=NOW_MS)


B2B = {"id": "b2b", "when": "recent_bottom_2_box", "within_days": 30,
       "message": "rated {contact_channel} {score}/{scale_max} on {date} ({ago}){comment_part}"}
REPEAT = {"id": "repeat", "when": "repeat_contact", "min_contacts": 3, "within_days": 7,
          "message": "{count} contacts about {intent} in {days} days"}


# --- the shipped file ---------------------------------------------------------

def test_shipped_file_loads_with_the_documented_rules() -> None:
    config = load_agent_config(SHIPPED)
    assert config.source == str(SHIPPED)
    assert set(config.relevance) >= {"billing", "technical", "cancellation", "sales",
                                      "delivery", "account"}
    assert {"bill", "refund", "charge"} <= set(config.relevance["billing"])
    rules = {rule.id: rule for rule in config.prompts}
    assert rules["recent-bottom-2-box"].when == "recent_bottom_2_box"
    assert rules["recent-bottom-2-box"].within_days == 30
    assert (rules["repeat-contact"].min_contacts, rules["repeat-contact"].within_days) == (3, 7)
    assert (rules["plan-under-used"].attribute, rules["plan-under-used"].comparator,
            rules["plan-under-used"].operand) == ("plan_usage_pct", "below", 30)
    assert (rules["vip-customer"].attribute, rules["vip-customer"].operand) == ("segment", "vip")


def test_shipped_rules_all_speak_on_a_matching_customer() -> None:
    # Loading checked the placeholders; this checks they fill in from real-shaped data.
    config = load_agent_config(SHIPPED)
    entries = [
        survey("s1", timedelta(days=2), 1, contact_channel="call", comment="agent was rude"),
        call("c1", timedelta(days=1)),
        call("c2", timedelta(days=3)),
    ]
    contact = call("c3", timedelta(0), kind="started")
    customer = {"customer_id": "C-000001", "name": "Ada Lovelace", "segment": "vip",
                "plan": "premium", "plan_usage_pct": 12}
    prompts = run(config, entries=entries, customer=customer, contact=contact)
    assert [p["rule"] for p in prompts] == [
        "recent-bottom-2-box", "repeat-contact", "vip-customer", "plan-under-used"]
    assert [p["tone"] for p in prompts] == ["alert", "alert", "info", "offer"]
    assert prompts[0] == {
        "rule": "recent-bottom-2-box", "priority": 1, "tone": "alert",
        "message": "Acknowledge the bad experience first: they scored their call contact 1/5 on "
                   '2026-11-20 (2 days ago) and said "agent was rude".'}
    assert prompts[1]["message"].startswith("Repeat contact: 3 contacts about billing in 7 days.")
    assert prompts[3]["message"].startswith(
        "Their premium plan is under-used (12% of allowance): offer the smaller plan")


# --- recent bottom-2-box --------------------------------------------------------

@pytest.mark.parametrize(("age", "fires"), [
    (timedelta(0), True),
    (timedelta(days=29, hours=23), True),
    (timedelta(days=30), True),  # exactly within_days ago still counts
    (timedelta(days=30, milliseconds=1), False),
    (timedelta(days=31), False),
])
def test_bottom_2_box_window(age: timedelta, fires: bool) -> None:
    prompts = run(config_of(B2B), entries=[survey("s1", age, 2, contact_channel="chat")])
    assert bool(prompts) is fires


@pytest.mark.parametrize(("score", "scale", "fires"), [
    (1, {}, True), (2, {}, True), (3, {}, False), (5, {}, False),
    (0, {"scale_min": 0, "scale_max": 10}, True),
    (1, {"scale_min": 0, "scale_max": 10}, True),
    (2, {"scale_min": 0, "scale_max": 10}, False),
    (2, {"scale_min": None, "scale_max": None}, True),  # null means the default 1..5
])
def test_bottom_2_box_uses_the_surveys_scale(score: int, scale: dict, fires: bool) -> None:
    prompts = run(config_of(B2B), entries=[survey("s1", timedelta(days=1), score,
                                                  contact_channel="call", **scale)])
    assert bool(prompts) is fires


def test_bottom_2_box_message_uses_the_newest_and_fills_the_placeholders() -> None:
    entries = [
        survey("s-new", timedelta(hours=3), 2, contact_channel="chat", scale_max=5,
               comment="  waited   40 minutes "),
        survey("s-old", timedelta(days=10), 1, contact_channel="call", comment="rude"),
        survey("s-good", timedelta(hours=1), 5, contact_channel="email"),
    ]
    [prompt] = run(config_of(B2B), entries=entries)
    assert prompt == {"rule": "b2b", "priority": 100, "tone": "info",
                      "message": 'rated chat 2/5 on 2026-11-22 (today) and said '
                                 '"waited 40 minutes"'}
    # Out of order input: the newest by occurred_at still wins.
    [prompt] = run(config_of(B2B), entries=list(reversed(entries)))
    assert "rated chat 2/5" in prompt["message"]


def test_bottom_2_box_without_a_channel_is_hidden_not_filled_with_a_stand_in() -> None:
    # The survey names no channel: {contact_channel} has no value, so the prompt stays
    # hidden (it once read "rated contact 1/5", the shipped one "their contact contact").
    for channel in ({}, {"contact_channel": None}, {"contact_channel": "  "}):
        assert run(config_of(B2B), entries=[survey("s1", timedelta(days=1), 1, **channel)]) == []


def test_bottom_2_box_channel_comes_from_the_rated_contact() -> None:
    rated = call("c-9", timedelta(days=1, hours=2), call_id="nt9")
    for contact_id in ("c-9", "nt9"):  # its event id, or the call's own id
        entries = [survey("s1", timedelta(days=1, hours=1), 1, contact_id=contact_id), rated]
        [prompt] = run(config_of(B2B), entries=entries)
        assert prompt["message"] == "rated call 1/5 on 2026-11-21 (yesterday)"
    unknown = [survey("s1", timedelta(days=1), 1, contact_id="elsewhere"), rated]
    assert run(config_of(B2B), entries=unknown) == []


def test_a_list_of_messages_shows_the_first_that_can_be_filled() -> None:
    rule = {**B2B, "message": ["rated their {contact_channel} {score}/{scale_max}",
                               "rated a contact {score}/{scale_max}"]}
    config = config_of(rule)
    assert config.prompts[0].messages == tuple(rule["message"])
    [full] = run(config, entries=[survey("s1", timedelta(days=1), 2, contact_channel="chat")])
    assert full["message"] == "rated their chat 2/5"
    [short] = run(config, entries=[survey("s1", timedelta(days=1), 2)])
    assert short["message"] == "rated a contact 2/5"


def test_shipped_bottom_2_box_prompt_reads_well_without_a_channel() -> None:
    [prompt] = run(load_agent_config(SHIPPED),
                   entries=[survey("s1", timedelta(days=2), 2)])
    assert prompt["message"] == ("Acknowledge the bad experience first: they scored a contact "
                                 "with us 2/5 on 2026-11-20 (2 days ago).")
    assert "contact contact" not in prompt["message"]


def test_fill_treats_none_as_missing_and_keeps_empty_texts() -> None:
    assert fill(["a {x}", "b"], {"x": None}) == "b"
    assert fill(["a {x}"], {"x": None}) is None
    assert fill(["a {x}."], {"x": ""}) == "a ."  # {comment_part} is empty by design
    assert fill(["{x:d}", "text {x}"], {"x": "7"}) == "text 7"


def test_bottom_2_box_cuts_a_long_comment() -> None:
    comment = "word " * 100
    [prompt] = run(config_of(B2B), entries=[survey("s1", timedelta(days=4), 1, comment=comment,
                                                   contact_channel="chat")])
    quoted = prompt["message"].split('"')[1]
    assert len(quoted) == 140 and quoted.endswith("\u2026")


@pytest.mark.parametrize("bad", [
    {"occurred_at": "yesterday"},
    {"occurred_at": None},
    {"payload": {"score": "1"}},
    {"payload": {"score": True}},
    {"payload": {"score": 1, "scale_min": "low"}},
    {"payload": {"score": 1, "scale_min": [1]}},
    {"payload": None},
    {"channel": None},
])
def test_bad_entries_are_skipped_not_fatal(bad: dict) -> None:
    broken = {**survey("s-bad", timedelta(days=1), 1, contact_channel="call"), **bad}
    config = config_of(B2B, REPEAT)
    assert run(config, entries=[broken, "not a dict", {}], intent="billing") == []  # type: ignore[list-item]
    good = survey("s-good", timedelta(days=2), 1, contact_channel="call")
    assert [p["rule"] for p in run(config, entries=[broken, good])] == ["b2b"]


def test_parse_ms() -> None:
    assert parse_ms("2026-11-22T12:00:00Z") == NOW_MS
    assert parse_ms("2026-11-22T12:00:00z") == NOW_MS
    assert parse_ms("2026-11-22T13:00:00.000+01:00") == NOW_MS
    assert parse_ms("2026-11-22T12:00:00") == NOW_MS  # no offset: taken as UTC
    assert parse_ms("not a time") is None
    assert parse_ms(12) is None


# --- repeat contact ---------------------------------------------------------------

def test_repeat_contact_counts_distinct_contacts_including_the_current_one() -> None:
    config = config_of(REPEAT)
    started = call("e1", timedelta(days=2), kind="started", call_id="X1")
    ended = call("e2", timedelta(days=2) - timedelta(minutes=9), call_id="X1")
    other = call("e3", timedelta(days=5), call_id="X2")
    current = call("e4", timedelta(0), kind="started", call_id="X3")
    # started + ended of one call is one contact: 2 so far, the current one makes 3.
    assert run(config, entries=[ended, started, other], contact=current) == [
        {"rule": "repeat", "message": "3 contacts about billing in 7 days", "priority": 100,
         "tone": "info"}]
    assert run(config, entries=[ended, started], contact=current) == []
    # The current contact already in the timeline is not counted twice.
    assert run(config, entries=[current, ended, started], contact=current) == []
    # Without a current contact (the API asked with an intent) only the past counts.
    assert run(config, entries=[ended, started, other], intent="billing") == []


def test_repeat_contact_groups_chats_and_mail_threads() -> None:
    config = config_of(REPEAT)
    chat_a = entry("e1", "chat", "started", timedelta(days=1), chat_id="K1", intent="billing")
    chat_b = entry("e2", "chat", "ended", timedelta(hours=23), chat_id="K1", intent="billing")
    mail_a = entry("e3", "email", "received", timedelta(days=3), thread_id="T1",
                   intent="billing", subject="Refund request")
    mail_b = entry("e4", "email", "sent", timedelta(days=2), thread_id="T1",
                   intent="billing", subject="Re: Refund request")
    no_id = entry("e5", "email", "received", timedelta(days=4), intent="billing")
    current = call("e6", timedelta(0), kind="started")
    # One chat (two entries) and one thread (two entries) are two contacts.
    assert run(config, entries=[chat_b, chat_a, mail_b, mail_a], intent="billing") == []
    [prompt] = run(config, entries=[chat_b, chat_a, mail_b, mail_a], contact=current)
    assert prompt["message"] == "3 contacts about billing in 7 days"
    # A mail without a thread id is a contact of its own (by event_id).
    [prompt] = run(config, entries=[chat_b, chat_a, mail_b, mail_a, no_id], contact=current)
    assert prompt["message"] == "4 contacts about billing in 7 days"


def test_contact_key() -> None:
    assert contact_key(call("e1", timedelta(0), call_id="X")) == ("call", "X")
    assert contact_key(entry("e2", "chat", "ended", timedelta(0), chat_id="X")) == ("chat", "X")
    assert contact_key(entry("e3", "email", "sent", timedelta(0), thread_id="X")) == ("email", "X")
    assert contact_key(entry("e4", "email", "sent", timedelta(0))) == ("event", "e4")
    assert contact_key(entry("e5", "sms", "received", timedelta(0))) == ("event", "e5")
    assert contact_key(survey("e6", timedelta(0), 1)) is None
    assert contact_key(entry("e7", "social", "post", timedelta(0), intent="billing")) is None
    # The CRM summary counts social posts, each on its own; surveys never.
    assert contact_key(entry("e7", "social", "post", timedelta(0)), social=True) == ("event", "e7")
    assert contact_key(survey("e6", timedelta(0), 1), social=True) is None


def test_repeat_contact_ignores_surveys_social_other_intents_and_old_contacts() -> None:
    config = config_of(REPEAT)
    current = call("now", timedelta(0), kind="started")
    noise = [
        survey("s1", timedelta(days=1), 1, intent="billing"),
        entry("p1", "social", "post", timedelta(days=1), intent="billing", text="my bill"),
        call("t1", timedelta(days=1), intent="technical"),
        call("old", timedelta(days=7, milliseconds=1)),
    ]
    assert run(config, entries=[call("c1", timedelta(days=1)), *noise], contact=current) == []
    edge = call("edge", timedelta(days=7))  # exactly 7 days before the contact: inside
    [prompt] = run(config, entries=[call("c1", timedelta(days=1)), edge, *noise],
                   contact=current)
    assert prompt["message"].startswith("3 contacts")


def test_repeat_contact_window_ends_at_the_contact_not_now() -> None:
    config = config_of(REPEAT)
    current = call("now", timedelta(days=10), kind="started")  # taken 10 days ago (replay)
    before = [call("c1", timedelta(days=11)), call("c2", timedelta(days=16))]
    after = [call("c3", timedelta(days=1)), call("c4", timedelta(days=2))]
    assert run(config, entries=[*after, *before], contact=current)[0]["message"].startswith(
        "3 contacts")
    assert run(config, entries=[*after, before[0]], contact=current) == []


def test_repeat_contact_uses_the_contacts_intent_when_none_is_given() -> None:
    config = config_of(REPEAT)
    entries = [call("c1", timedelta(days=1), intent="Billing"), call("c2", timedelta(days=2))]
    current = call("now", timedelta(0), intent=" BILLING ", kind="started")
    [prompt] = run(config, entries=entries, contact=current)
    assert prompt["message"] == "3 contacts about billing in 7 days"
    assert run(config, entries=entries, contact=current, intent="technical") == []


# --- customer attributes ----------------------------------------------------------

def attribute_rule(**condition: Any) -> dict:
    return {"id": "attr", "when": "customer_attribute", "message": "{attribute}={value}",
            **condition}


@pytest.mark.parametrize(("condition", "value", "fires"), [
    ({"attribute": "plan_usage_pct", "below": 30}, 29, True),
    ({"attribute": "plan_usage_pct", "below": 30}, 29.9, True),
    ({"attribute": "plan_usage_pct", "below": 30}, 30, False),  # strictly below
    ({"attribute": "plan_usage_pct", "below": 30}, "12", True),  # CRM numbers as text
    ({"attribute": "plan_usage_pct", "below": 30}, "12%", True),
    ({"attribute": "plan_usage_pct", "below": 30}, "n/a", False),
    ({"attribute": "plan_usage_pct", "below": 30}, True, False),
    ({"attribute": "plan_usage_pct", "below": 30}, None, False),
    ({"attribute": "plan_usage_pct", "below": 30}, "nan", False),
    ({"attribute": "lifetime_value_gbp", "above": 1000}, 1000.5, True),
    ({"attribute": "lifetime_value_gbp", "above": 1000}, 1000, False),
    ({"attribute": "segment", "equals": "vip"}, "vip", True),
    ({"attribute": "segment", "equals": "vip"}, " VIP ", True),
    ({"attribute": "segment", "equals": "vip"}, "consumer", False),
    ({"attribute": "segment", "equals": "vip"}, ["vip"], False),
    ({"attribute": "marketing_consent", "equals": True}, True, True),
    ({"attribute": "marketing_consent", "equals": True}, 1, False),  # 1 is not true
    ({"attribute": "marketing_consent", "equals": 1}, True, False),
    ({"attribute": "tenure_years", "equals": 5}, 5.0, True),
    ({"attribute": "plan", "in": ["basic", "plus"]}, "Plus", True),
    ({"attribute": "plan", "in": ["basic", "plus"]}, "premium", False),
    ({"attribute": "tier", "in": [1, 2]}, 2, True),
])
def test_attribute_comparators(condition: dict, value: Any, fires: bool) -> None:
    customer = {"customer_id": "C-1", condition["attribute"]: value}
    prompts = run(config_of(attribute_rule(**condition)), customer=customer)
    assert bool(prompts) is fires
    if fires:
        assert prompts[0]["message"] == f"{condition['attribute']}={value}"


def test_attribute_missing_or_no_customer() -> None:
    config = config_of(attribute_rule(attribute="segment", equals="vip"))
    assert run(config, customer={"customer_id": "C-1"}) == []
    assert run(config, customer=None) == []


def test_message_with_a_value_the_data_lacks_is_not_shown() -> None:
    rule = attribute_rule(attribute="plan_usage_pct", below=30)
    rule["message"] = "Their {plan} plan is under-used ({value}%), {first_name}"
    config = config_of(rule)
    customer = {"customer_id": "C-1", "name": "Ada Lovelace", "plan": "plus",
                "plan_usage_pct": 10}
    assert run(config, customer=customer)[0]["message"] == (
        "Their plus plan is under-used (10%), Ada")
    assert run(config, customer={**customer, "plan": None}) == []
    assert run(config, customer={k: v for k, v in customer.items() if k != "name"}) == []
    # A format spec that does not suit this customer's value: silent, not a crash.
    rule["message"] = "{value:.0f}%"
    assert run(config_of(rule), customer={**customer, "plan_usage_pct": "7"}) == []
    assert run(config_of(rule), customer={**customer, "plan_usage_pct": 7.4})[0]["message"] == (
        "7%")


# --- intents, priority, order ---------------------------------------------------------

def test_intents_restrict_a_rule() -> None:
    rule = {**attribute_rule(attribute="segment", equals="vip"), "intents": ["Billing", "sales"]}
    config = config_of(rule)
    customer = {"segment": "vip"}
    assert run(config, customer=customer, intent="billing")
    assert run(config, customer=customer, intent="SALES")
    assert run(config, customer=customer, intent="technical") == []
    assert run(config, customer=customer) == []  # no intent: not one of those listed
    assert run(config, customer=customer, contact=call("c", timedelta(0), intent="sales"))


def test_prompts_sorted_by_priority_then_id() -> None:
    rules = [
        {**attribute_rule(attribute="segment", equals="vip"), "id": "zeta", "priority": 5},
        {**attribute_rule(attribute="segment", equals="vip"), "id": "alpha", "priority": 5},
        {**attribute_rule(attribute="segment", equals="vip"), "id": "first", "priority": -1},
        {**attribute_rule(attribute="segment", equals="vip"), "id": "default"},
    ]
    prompts = run(config_of(*rules), customer={"segment": "vip"})
    assert [(p["rule"], p["priority"]) for p in prompts] == [
        ("first", -1), ("alpha", 5), ("zeta", 5), ("default", 100)]


def test_disabled_rule_is_not_loaded() -> None:
    config = config_of({**B2B, "enabled": False}, REPEAT)
    assert [rule.id for rule in config.prompts] == ["repeat"]


def test_rules_are_frozen_dataclasses() -> None:
    rule = config_of(B2B).prompts[0]
    assert isinstance(rule, PromptRule)
    with pytest.raises(AttributeError):
        rule.priority = 1  # type: ignore[misc]


# --- configuration errors -------------------------------------------------------------

def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(path)
    assert str(caught.value).startswith(f"{path}: agent context file not found")


def test_bad_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[prompt]]\nid = "x\n')
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(path)
    assert str(caught.value).startswith(f"{path}: not valid TOML")
    assert "line 2" in str(caught.value)


def test_error_from_a_file_names_file_rule_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, '[[prompt]]\nid = "ok"\nwhen = "repeat_contact"\nmin_contacts = 3\n'
                           'within_days = 7\nmessage = "{count} times"\n\n'
                           '[[prompt]]\nid = "late"\nwhen = "recent_bottom_2_box"\n'
                           'within_days = "30"\nmessage = "hi"\n')
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(path)
    assert str(caught.value) == (
        f"{path}: prompt 2 'late': within_days must be a whole number >= 1 (got '30')")


def bad(rule: dict) -> str:
    with pytest.raises(AgentConfigError) as caught:
        config_of(rule)
    return str(caught.value)


@pytest.mark.parametrize(("rule", "message"), [
    ({**B2B, "when": "recent_bottom2box"},
     "t.toml: prompt 1 'b2b': when must be one of recent_bottom_2_box, repeat_contact, "
     "customer_attribute, preference (got 'recent_bottom2box'); did you mean "
     "'recent_bottom_2_box'?"),
    ({k: v for k, v in B2B.items() if k != "when"},
     "t.toml: prompt 1 'b2b': when is required (one of recent_bottom_2_box, repeat_contact, "
     "customer_attribute, preference)"),
    ({k: v for k, v in B2B.items() if k != "id"},
     "t.toml: prompt 1: id is required and must be a non-empty text"),
    ({**B2B, "id": "  "}, "t.toml: prompt 1: id is required and must be a non-empty text"),
    ({k: v for k, v in B2B.items() if k != "message"},
     "t.toml: prompt 1 'b2b': message is required and must be a non-empty text, or a list "
     "of them (the first that can be filled is shown)"),
    ({**B2B, "message": []},
     "t.toml: prompt 1 'b2b': message is required and must be a non-empty text, or a list "
     "of them (the first that can be filled is shown)"),
    ({**B2B, "message": ["rated {score}", 3]},
     "t.toml: prompt 1 'b2b': message is required and must be a non-empty text, or a list "
     "of them (the first that can be filled is shown)"),
    ({**B2B, "message": ["rated {score}", "rated {scor}"]},
     "t.toml: prompt 1 'b2b': message has unknown placeholder {scor} (allowed for when = "
     "'recent_bottom_2_box': ago, comment, comment_part, contact_channel, customer_id, date, "
     "days_ago, first_name, intent, name, plan, region, scale_max, scale_min, score, segment); "
     "did you mean {score}?"),
    ({**B2B, "tone": "alarm"},
     "t.toml: prompt 1 'b2b': tone must be one of alert, info, offer (got 'alarm'); "
     "did you mean 'alert'?"),
    ({**B2B, "tone": 1}, "t.toml: prompt 1 'b2b': tone must be one of alert, info, offer "
     "(got 1)"),
    ({k: v for k, v in B2B.items() if k != "within_days"},
     "t.toml: prompt 1 'b2b': within_days is required for when = 'recent_bottom_2_box'"),
    ({**B2B, "within_days": 0},
     "t.toml: prompt 1 'b2b': within_days must be a whole number >= 1 (got 0)"),
    ({**B2B, "within_days": 1.5},
     "t.toml: prompt 1 'b2b': within_days must be a whole number >= 1 (got 1.5)"),
    ({**REPEAT, "min_contacts": 1},
     "t.toml: prompt 1 'repeat': min_contacts must be a whole number >= 2 (got 1)"),
    ({**B2B, "priority": "high"},
     "t.toml: prompt 1 'b2b': priority must be a whole number (got 'high')"),
    ({**B2B, "priority": True},
     "t.toml: prompt 1 'b2b': priority must be a whole number (got True)"),
    ({**B2B, "enabled": "no"}, "t.toml: prompt 1 'b2b': enabled must be true or false (got 'no')"),
    ({**B2B, "intents": []},
     "t.toml: prompt 1 'b2b': intents must be a list of at least one text, like [\"a\", \"b\"]"),
    ({**B2B, "intents": "billing"},
     "t.toml: prompt 1 'b2b': intents must be a list of at least one text, like [\"a\", \"b\"]"),
    ({**B2B, "min_contacts": 3},
     "t.toml: prompt 1 'b2b': unknown key 'min_contacts' (allowed: id, when, message, priority, "
     "tone, intents, description, enabled, within_days)"),
    ({**B2B, "priorty": 3},
     "t.toml: prompt 1 'b2b': unknown key 'priorty' (allowed: id, when, message, priority, "
     "tone, intents, description, enabled, within_days); did you mean 'priority'?"),
    ({**B2B, "message": "they said {coment}"},
     "t.toml: prompt 1 'b2b': message has unknown placeholder {coment} (allowed for when = "
     "'recent_bottom_2_box': ago, comment, comment_part, contact_channel, customer_id, date, "
     "days_ago, first_name, intent, name, plan, region, scale_max, scale_min, score, segment); "
     "did you mean {comment}?"),
    ({**REPEAT, "message": "rated {score}"},
     "t.toml: prompt 1 'repeat': message has unknown placeholder {score} (allowed for when = "
     "'repeat_contact': count, customer_id, days, first_name, intent, name, plan, region, "
     "segment)"),
    ({**B2B, "message": "score {}"},
     "t.toml: prompt 1 'b2b': message placeholder {} must be one plain name (allowed for "
     "when = 'recent_bottom_2_box': ago, comment, comment_part, contact_channel, customer_id, "
     "date, days_ago, first_name, intent, name, plan, region, scale_max, scale_min, score, "
     "segment)"),
    ({**B2B, "message": "{name.upper}"},
     "t.toml: prompt 1 'b2b': message placeholder {name.upper} must be one plain name "
     "(allowed for when = 'recent_bottom_2_box': ago, comment, comment_part, contact_channel, "
     "customer_id, date, days_ago, first_name, intent, name, plan, region, scale_max, "
     "scale_min, score, segment)"),
    ({**B2B, "message": "score {score"},
     "t.toml: prompt 1 'b2b': message is not a valid template (expected '}' before end of "
     "string); write a literal brace as {{ or }}"),
    ({**B2B, "message": "score {score:%}x{score:q}"},
     "t.toml: prompt 1 'b2b': message is not a valid template: Unknown format code 'q' for "
     "object of type 'int'"),
])
def test_rule_errors_are_precise(rule: dict, message: str) -> None:
    assert bad(rule) == message


@pytest.mark.parametrize(("condition", "message"), [
    ({}, "t.toml: prompt 1 'attr': attribute is required and must name a field of the "
         "customer record, like \"segment\""),
    ({"attribute": "segment"},
     "t.toml: prompt 1 'attr': needs one comparison: equals, in, below, above"),
    ({"attribute": "segment", "equals": "vip", "in": ["vip"]},
     "t.toml: prompt 1 'attr': has equals and in; give exactly one of equals, in, below, above"),
    ({"attribute": "usage", "below": "30"},
     "t.toml: prompt 1 'attr': below must be a number (got '30')"),
    ({"attribute": "usage", "above": False},
     "t.toml: prompt 1 'attr': above must be a number (got False)"),
    ({"attribute": "segment", "equals": ["vip"]},
     "t.toml: prompt 1 'attr': equals must be a text, number or true/false (got ['vip'])"),
    ({"attribute": "segment", "in": []},
     "t.toml: prompt 1 'attr': in must be a list of at least one text, number or true/false, "
     "like [\"gold\", \"vip\"] (got [])"),
    ({"attribute": "segment", "in": "vip"},
     "t.toml: prompt 1 'attr': in must be a list of at least one text, number or true/false, "
     "like [\"gold\", \"vip\"] (got 'vip')"),
    ({"attribute": "segment", "equals": "vip", "within_days": 3},
     "t.toml: prompt 1 'attr': unknown key 'within_days' (allowed: id, when, message, "
     "priority, tone, intents, description, enabled, attribute, equals, in, below, above)"),
])
def test_attribute_errors_are_precise(condition: dict, message: str) -> None:
    assert bad(attribute_rule(**condition)) == message


def test_attribute_value_format_is_checked_against_the_operand() -> None:
    # {value:.0f} suits a numeric threshold, not a text one: caught at load.
    rule = attribute_rule(attribute="usage", below=30)
    rule["message"] = "{value:.0f}%"
    assert config_of(rule).prompts[0].message == "{value:.0f}%"
    rule = attribute_rule(attribute="segment", equals="vip")
    rule["message"] = "{value:.0f}%"
    assert bad(rule) == ("t.toml: prompt 1 'attr': message is not a valid template: Unknown "
                         "format code 'f' for object of type 'str'")


def test_duplicate_ids_name_both_rules() -> None:
    with pytest.raises(AgentConfigError) as caught:
        config_of(B2B, REPEAT, {**REPEAT, "id": "b2b"})
    assert str(caught.value) == (
        "t.toml: prompt 3 'b2b': id is already used by prompt 1; ids must be unique so the "
        "agent view says which rule spoke")


@pytest.mark.parametrize(("document", "message"), [
    ({"prompts": []}, "t.toml: top level: unknown key 'prompts' (allowed: relevance, prompt, "
                      "fields, at_risk); did you mean 'prompt'?"),
    ({"prompt": {"id": "x"}}, "t.toml: prompt must be written as [[prompt]] blocks"),
    ({"prompt": ["x"]}, "t.toml: prompt 1: must be a [[prompt]] block"),
    ({"relevance": ["bill"]}, "t.toml: relevance must be tables like [relevance.billing]"),
    ({"relevance": {"billing": ["bill"]}},
     "t.toml: relevance.billing: must be a table with keywords = [...]"),
    ({"relevance": {"billing": {}}}, "t.toml: relevance.billing: keywords is required"),
    ({"relevance": {"billing": {"keywords": ["bill"], "words": ["x"]}}},
     "t.toml: relevance.billing: unknown key 'words' (allowed: keywords); "
     "did you mean 'keywords'?"),
    ({"relevance": {"billing": {"keywords": []}}},
     "t.toml: relevance.billing: keywords must be a list of at least one text, like "
     "[\"a\", \"b\"]"),
    ({"relevance": {"billing": {"keywords": ["bill", ""]}}},
     "t.toml: relevance.billing: keywords must contain only non-empty texts (got '')"),
    ({"relevance": {"billing": {"keywords": ["bill", 3]}}},
     "t.toml: relevance.billing: keywords must contain only non-empty texts (got 3)"),
    ({"relevance": {"billing": {"keywords": ["a"]}, "Billing": {"keywords": ["b"]}}},
     "t.toml: relevance.Billing: intent is listed twice (names ignore case)"),
])
def test_document_errors_are_precise(document: dict, message: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        parse_agent_config(document, "t.toml")
    assert str(caught.value) == message


def test_relevance_keys_are_lower_case() -> None:
    config = config_of(relevance={" Billing ": {"keywords": [" bill ", "refund"]}})
    assert config.relevance == {"billing": ("bill", "refund")}


def test_every_documented_placeholder_is_accepted() -> None:
    for when, names in WHEN_PLACEHOLDERS.items():
        message = " ".join(f"{{{name}}}" for name in [*COMMON_PLACEHOLDERS, *names])
        rule = {"id": "all", "when": when, "message": message, "within_days": 1,
                "min_contacts": 2, "attribute": "a", "equals": "x", "preference": "language"}
        rule = {k: v for k, v in rule.items()
                if k in ("id", "when", "message")
                or (when in ("recent_bottom_2_box", "repeat_contact") and k == "within_days")
                or (when == "preference" and k == "preference")
                or (when == "repeat_contact" and k == "min_contacts")
                or (when == "customer_attribute" and k in ("attribute", "equals"))}
        assert config_of(rule).prompts[0].message == message


# --- tone ------------------------------------------------------------------------------

def test_tone_defaults_to_info_and_is_carried_to_the_prompt() -> None:
    assert config_of(B2B).prompts[0].tone == "info"
    for tone in TONES:
        [prompt] = run(config_of({**B2B, "tone": tone}),
                       entries=[survey("s1", timedelta(days=1), 1, contact_channel="call")])
        assert prompt["tone"] == tone


def test_shipped_upsell_is_an_offer_not_an_alert() -> None:
    rules = {rule.id: rule for rule in load_agent_config(SHIPPED).prompts}
    assert rules["plan-under-used"].tone == "offer"
    assert rules["recent-bottom-2-box"].tone == "alert"


# --- record fields -----------------------------------------------------------------------

def fields_of(**tables: dict) -> dict[str, CustomerField]:
    return parse_agent_config({"fields": tables}, "t.toml").fields


def test_shipped_fields_label_the_demo_records() -> None:
    fields = load_agent_config(SHIPPED).fields
    assert fields["plan_usage_pct"] == CustomerField("Plan usage", "percent", "", 0)
    assert fields["lifetime_value_gbp"] == CustomerField("Lifetime value", "money", "£")
    assert fields["marketing_consent"].format == "yes_no"


def test_fields_keep_the_files_order_and_defaults() -> None:
    fields = fields_of(b={"label": " B "}, a={"label": "A", "format": "number",
                                              "unit": "months", "decimals": 1})
    assert list(fields) == ["b", "a"]
    assert fields["b"] == CustomerField("B")
    assert fields["a"] == CustomerField("A", "number", "months", 1)


@pytest.mark.parametrize(("table", "message"), [
    ({}, "t.toml: fields.x: label is required and must be a non-empty text"),
    ({"label": " "}, "t.toml: fields.x: label is required and must be a non-empty text"),
    ({"label": "X", "lable": "Y"},
     "t.toml: fields.x: unknown key 'lable' (allowed: label, format, unit, decimals); "
     "did you mean 'label'?"),
    ({"label": "X", "format": "percentage"},
     "t.toml: fields.x: format must be one of text, number, percent, money, yes_no, date "
     "(got 'percentage'); did you mean 'percent'?"),
    ({"label": "X", "format": "money"},
     't.toml: fields.x: format = "money" needs unit, the currency sign written before the '
     'amount, like "£"'),
    ({"label": "X", "unit": "%"},
     't.toml: fields.x: unit is for format = "money" (the currency sign) or "number" '
     "(written after it), not 'text'"),
    ({"label": "X", "format": "number", "unit": 5},
     't.toml: fields.x: unit must be a text, like "£" or "months"'),
    ({"label": "X", "format": "percent", "decimals": 7},
     "t.toml: fields.x: decimals must be a whole number from 0 to 6 (got 7)"),
    ({"label": "X", "format": "percent", "decimals": True},
     "t.toml: fields.x: decimals must be a whole number from 0 to 6 (got True)"),
    ({"label": "X", "format": "date", "decimals": 1},
     't.toml: fields.x: decimals is for format = "money", "number" or "percent", not \'date\''),
    ("X", 't.toml: fields.x: must be a table with label = "..."'),
])
def test_field_errors_are_precise(table: Any, message: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        fields_of(x=table)
    assert str(caught.value) == message


def test_name_and_identifiers_cannot_be_configured_as_fields() -> None:
    with pytest.raises(AgentConfigError, match=r"fields\.identifiers: this part of the record"):
        fields_of(identifiers={"label": "Ids"})
    with pytest.raises(AgentConfigError, match="fields must be tables"):
        parse_agent_config({"fields": ["plan"]}, "t.toml")
