"""The customer's own notes and preferences in the agent context, and the prompts that
obey them (dashboard.context, dashboard.prompts); no services."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from dashboard.context import NOTES_SHOWN, build_context, own_words, preferences_view
from dashboard.prompts import (
    AgentConfig,
    AgentConfigError,
    decide_prompts,
    evaluate_prompts,
    language_name,
    load_agent_config,
    parse_agent_config,
)
from tests.support.helpers import REPO

SHIPPED = REPO / "config" / "agent_context.toml"
# Tuesday 1 December 2026, 10:00 UTC: inside office hours in London.
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
UPSELL = {"id": "upsell", "when": "customer_attribute", "attribute": "plan_usage_pct",
          "below": 30, "tone": "offer", "priority": 20,
          "message": "Their {plan} plan is under-used: offer the smaller one."}
VIP = {"id": "vip", "when": "customer_attribute", "attribute": "segment", "equals": "vip",
       "priority": 5, "message": "VIP: greet {first_name} by name."}
LANGUAGE = {"id": "lang", "when": "preference", "preference": "language",
            "except_values": ["en"], "message": "Speak {value_text} ({value})."}
CUSTOMER = {"customer_id": "C-1", "name": "Ada Lovelace", "plan": "plus", "segment": "vip",
            "plan_usage_pct": 10}
PREFERENCES = {"preferred_channel": "email", "language": "pl",
               "contact_hours": {"from": "09:00", "to": "17:30",
                                 "days": ["mon", "tue", "wed", "thu", "fri"]},
               "time_zone": "Europe/London", "accessibility_needs": "Hard of hearing: speak slowly",
               "no_sales_offers": True, "set_at": "2026-11-30T18:00:00.000Z",
               "event_id": "ev-prefs", "occurred_ms": 1_796_000_000_000}


def config_of(*prompts: dict) -> AgentConfig:
    return parse_agent_config({"prompt": list(prompts)}, "t.toml")


def decide(config: AgentConfig, preferences: dict | None, **changes: Any) -> Any:
    arguments: dict[str, Any] = {"customer": CUSTOMER, "entries": [], "intent": "billing",
                                 "contact": None, "now_ms": NOW_MS, "preferences": preferences}
    return decide_prompts(config, **(arguments | changes))


# --- no sales offers ------------------------------------------------------------------


def test_no_sales_offers_holds_back_every_offer_and_says_why() -> None:
    decision = decide(config_of(UPSELL, VIP), PREFERENCES)
    assert [p["rule"] for p in decision.shown] == ["vip"]
    assert decision.held_back == [{
        "rule": "upsell", "tone": "offer", "priority": 20,
        "reason": "The customer asked for no sales offers (preferences set 2026-11-30): sales "
                  "and retention offers are not shown."}]


def test_offers_are_shown_without_the_opt_out() -> None:
    for preferences in (None, {**PREFERENCES, "no_sales_offers": False}, {}):
        decision = decide(config_of(UPSELL, VIP), preferences)
        assert [p["rule"] for p in decision.shown] == ["vip", "upsell"]
        assert decision.held_back == []


def test_only_an_offer_that_would_have_spoken_is_reported_held_back() -> None:
    # The plan is well used: the upsell would not speak, so nothing was held back.
    decision = decide(config_of(UPSELL), PREFERENCES, customer={**CUSTOMER, "plan_usage_pct": 90})
    assert decision.shown == [] and decision.held_back == []
    # A truthy text is not the opt-out: only true is.
    assert decide(config_of(UPSELL), {"no_sales_offers": "yes"}).shown[0]["rule"] == "upsell"


def test_evaluate_prompts_returns_the_shown_list() -> None:
    shown = evaluate_prompts(config_of(UPSELL, VIP), customer=CUSTOMER, entries=[],
                             intent=None, contact=None, now_ms=NOW_MS, preferences=PREFERENCES)
    assert [p["rule"] for p in shown] == ["vip"]


# --- preference prompts -----------------------------------------------------------------


def test_a_preference_prompt_speaks_only_when_it_is_set() -> None:
    config = config_of(LANGUAGE)
    [prompt] = decide(config, PREFERENCES).shown
    assert prompt == {"rule": "lang", "message": "Speak Polish (pl).", "priority": 100,
                      "tone": "info"}
    assert decide(config, {**PREFERENCES, "language": None}).shown == []
    assert decide(config, {**PREFERENCES, "language": "  "}).shown == []
    assert decide(config, None).shown == []


def test_except_values_cover_regional_tags() -> None:
    config = config_of(LANGUAGE)
    for tag in ("en", "EN", "en-GB"):
        assert decide(config, {"language": tag}).shown == [], tag
    assert decide(config, {"language": "cy"}).shown[0]["message"] == "Speak Welsh (cy)."
    assert decide(config, {"language": "eng"}).shown[0]["message"] == "Speak eng (eng)."


def test_language_names() -> None:
    assert language_name("pl") == "Polish"
    assert language_name("pt-BR") == "Portuguese (pt-BR)"
    assert language_name("tlh") == "tlh"


def test_the_shipped_preference_prompts_fill_from_real_preferences() -> None:
    config = load_agent_config(SHIPPED)
    decision = decide(config, PREFERENCES)
    by_rule = {p["rule"]: p for p in decision.shown}
    assert by_rule["preferred-channel"]["message"].startswith("They prefer e-mail:")
    assert by_rule["preferred-language"]["message"].startswith("They prefer Polish (pl):")
    assert "\u201cHard of hearing: speak slowly\u201d" in by_rule["accessibility-needs"]["message"]
    assert [p["rule"] for p in decision.held_back] == ["plan-under-used"]
    assert all(p["tone"] != "offer" for p in decision.shown)
    # English is what everyone speaks here: no language prompt for it.
    english = decide(config, {**PREFERENCES, "language": "en-GB"})
    assert "preferred-language" not in {p["rule"] for p in english.shown}
    sms = {p["rule"]: p for p in decide(config, {"preferred_channel": "sms"}).shown}
    assert sms["preferred-channel"]["message"].startswith("They prefer a text message (SMS):")


@pytest.mark.parametrize(("rule", "message"), [
    ({**LANGUAGE, "preference": "lang"},
     "t.toml: prompt 1 'lang': preference must be one of preferred_channel, language, "
     "accessibility_needs (got 'lang'); did you mean 'language'?"),
    ({k: v for k, v in LANGUAGE.items() if k != "preference"},
     "t.toml: prompt 1 'lang': preference must be one of preferred_channel, language, "
     "accessibility_needs (got None)"),
    ({**LANGUAGE, "except_values": "en"},
     "t.toml: prompt 1 'lang': except_values"),
    ({**LANGUAGE, "message": "Speak {language}"},
     "t.toml: prompt 1 'lang': message has unknown placeholder {language}"),
    ({**UPSELL, "except_values": ["x"]},
     "t.toml: prompt 1 'upsell': unknown key 'except_values'"),
])
def test_preference_rule_errors_name_the_rule_and_key(rule: dict, message: str) -> None:
    with pytest.raises(AgentConfigError) as caught:
        config_of(rule)
    assert str(caught.value).startswith(message), str(caught.value)


# --- the context ---------------------------------------------------------------------


def _context(notes: list[dict] | None, preferences: dict | None) -> dict:
    config = config_of(UPSELL, VIP, LANGUAGE)
    return build_context(customer_id="C-1", profile=CUSTOMER, entries=[], alerts=[],
                         intent=None, contact=None, config=config, now_ms=NOW_MS, limit=30,
                         notes=notes, preferences=preferences)


def _note(index: int) -> dict:
    return {"note_id": f"n{index}", "text": f"note {index}", "event_id": f"ev-{index}",
            "added_at": f"2026-11-{10 + index:02d}T09:00:00.000Z"}


def test_the_context_carries_the_newest_notes_and_the_preferences() -> None:
    notes = [_note(i) for i in range(NOTES_SHOWN + 1, 0, -1)]  # newest first, one too many
    context = _context(notes, PREFERENCES)
    assert [n["note_id"] for n in context["notes"]] == ["n6", "n5", "n4", "n3", "n2"]
    assert context["notes"][0] == {"note_id": "n6", "text": "note 6",
                                   "added_at": "2026-11-16T09:00:00.000Z"}
    assert context["more_notes"] is True
    preferences = context["preferences"]
    assert "event_id" not in preferences and "occurred_ms" not in preferences
    assert preferences["language"] == "pl" and preferences["set_at"] == PREFERENCES["set_at"]
    hours = context["contact_hours_now"]
    assert hours["status"] == "inside" and hours["local_text"] == "Tue 10:00 GMT"
    assert hours["closes_text"] == "today 17:30"
    assert [p["rule"] for p in context["prompts"]] == ["vip", "lang"]
    assert [p["rule"] for p in context["prompts_held_back"]] == ["upsell"]


def test_a_customer_who_told_us_nothing_gets_empty_own_words() -> None:
    context = _context(None, None)
    assert context["notes"] == [] and context["more_notes"] is False
    assert context["preferences"] is None
    assert context["contact_hours_now"]["status"] == "no_preference"
    assert context["contact_hours_now"]["reason"] == "no preferences set"
    assert [p["rule"] for p in context["prompts"]] == ["vip", "upsell"]
    assert context["prompts_held_back"] == []


def test_own_words_keep_note_text_as_sent() -> None:
    odd = {"note_id": "x", "text": "<script>alert(1)</script>", "added_at": None}
    words = own_words([odd, "not a note"], None, NOW_MS)  # type: ignore[list-item]
    assert words["notes"] == [odd]


def test_preferences_view_reads_the_hours_at_the_instant() -> None:
    evening = int(datetime(2026, 12, 1, 19, 0, tzinfo=UTC).timestamp() * 1000)
    view = preferences_view(PREFERENCES, evening)
    assert view["contact_hours_now"]["status"] == "outside"
    assert view["contact_hours_now"]["next_window_text"] == "tomorrow 09:00"
    unknown = preferences_view({**PREFERENCES, "time_zone": "Nowhere/Land"}, evening)
    assert unknown["contact_hours_now"]["reason"] == \
        "unknown time zone 'Nowhere/Land': contact hours not applied"
