"""The signals one timeline entry shows on its own (domain.signals)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.sentiment import Sentiment, score_entry
from domain.signal_config import DEFAULT_SIGNALS_PATH, SignalConfig, load_signals
from domain.signals import (
    ESCALATION,
    NEGATIVE_SENTIMENT,
    TRANSFERS,
    WAIT,
    Signal,
    contact_of,
    entry_signals,
    is_abandoned,
    is_inbound_contact,
)
from tests.support.fuzz import fuzz, json_values

CONFIG = load_signals(DEFAULT_SIGNALS_PATH)
AT = "2026-12-01T10:00:00Z"


def entry(channel: str, **payload: object) -> dict:
    return {"event_id": "E-1", "customer_id": "C-1", "channel": channel, "type": f"{channel}.x",
            "occurred_at": AT, "payload": payload}


def signals(item: dict, config: SignalConfig = CONFIG) -> list[Signal]:
    return entry_signals(item, score_entry(item["channel"], item["payload"], config.sentiment),
                         config)


def rules(item: dict, config: SignalConfig = CONFIG) -> list[str]:
    return [s.rule for s in signals(item, config)]


def test_contact_names() -> None:
    assert contact_of(entry("call", call_id="CALL-9")) == "call:CALL-9"
    assert contact_of(entry("chat", chat_id=77)) == "chat:77"
    assert contact_of(entry("email", message_id="M-1", thread_id="T-1")) == "email:T-1"
    assert contact_of(entry("social", post_id="P-1")) == "event:E-1"  # each post on its own
    assert contact_of(entry("call")) == "event:E-1"
    assert contact_of({"channel": "call", "payload": None}) == "event:"
    assert contact_of("nonsense") == "event:"


def test_an_angry_chat_gives_a_sentiment_signal_with_its_score() -> None:
    item = entry("chat", chat_id="CH-1",
                 messages=[{"from": "customer", "text": "absolutely ridiculous, worst ever"}])
    [found] = signals(item)
    assert found.rule == NEGATIVE_SENTIMENT and found.score is not None and found.score < -0.3
    assert found.weight is None and found.detail is None
    assert found.as_json() == {"rule": NEGATIVE_SENTIMENT, "event_id": "E-1", "channel": "chat",
                               "contact": "chat:CH-1", "occurred_at": AT, "score": found.score}
    assert found.key == (NEGATIVE_SENTIMENT, "chat:CH-1")


def test_the_agents_words_raise_nothing() -> None:
    item = entry("chat", chat_id="CH-1", messages=[
        {"from": "agent", "text": "sorry, this is a terrible complaint, I'll get my manager"},
        {"from": "customer", "text": "ok thanks"}])
    assert signals(item) == []


def test_a_public_post_weighs_more_than_a_private_one() -> None:
    mild = Sentiment(-0.25, "neutral", "model", 20)
    public = entry("social", post_id="P-1", public=True, text="meh")
    private = entry("social", post_id="P-1", public=False, text="meh")
    [found] = entry_signals(public, mild, CONFIG)
    assert found.rule == NEGATIVE_SENTIMENT and found.score == -0.25 and found.weight == 1.5
    assert found.detail == "public post: -0.25 x 1.5 = -0.38"
    assert entry_signals(private, mild, CONFIG) == []
    # Weighted and clamped: never below -1.
    [strong] = entry_signals(public, Sentiment(-0.9, "negative", "payload", 0), CONFIG)
    assert strong.detail == "public post: -0.90 x 1.5 = -1.00"


def test_escalation_language_names_what_was_said() -> None:
    item = entry("email", thread_id="T-1", direction="inbound", subject="Re: bill",
                 body="If this isn\u2019t fixed I will go to the OMBUDSMAN.")
    found = [s for s in signals(item) if s.rule == ESCALATION]
    assert [s.detail for s in found] == ["said 'ombudsman'"]
    outbound = entry("email", thread_id="T-1", direction="outbound",
                     body="You can take your complaint to the ombudsman")
    assert signals(outbound) == []


def test_escalation_is_found_even_when_the_source_scored_the_post() -> None:
    item = entry("social", post_id="P-1", text="formal complaint going in", sentiment=0.2)
    assert rules(item) == [ESCALATION]


def test_operational_pain_on_calls_and_chats() -> None:
    call = entry("call", call_id="CALL-1", transfers=3, wait_seconds=601.7)
    found = {s.rule: s for s in signals(call)}
    assert found[TRANSFERS].count == 3 and found[WAIT].count == 601
    assert rules(entry("call", transfers=2, wait_seconds=600)) == []
    assert rules(entry("chat", wait_seconds=900, transfers=9)) == [WAIT]  # chats have no transfers
    assert rules(entry("email", wait_seconds=900)) == []
    for bad in (True, "5", None, [4], float("inf"), float("nan")):
        assert rules(entry("call", transfers=bad, wait_seconds=bad)) == []


def test_switched_off_sections_raise_nothing() -> None:
    off = replace(CONFIG, sentiment=replace(CONFIG.sentiment, enabled=False),
                  escalation=replace(CONFIG.escalation, enabled=False),
                  operational=replace(CONFIG.operational, enabled=False))
    angry = entry("social", public=True, text="worst company ever, formal complaint")
    assert rules(entry("call", transfers=9, wait_seconds=9999), off) == []
    assert entry_signals(angry, Sentiment(-0.9, "negative", "model", 30), off) == []
    assert rules(angry) == [NEGATIVE_SENTIMENT, ESCALATION]


def test_the_text_the_caller_has_is_used() -> None:
    item = entry("social", text="nothing to see")
    found = entry_signals(item, None, CONFIG, text="I want a supervisor")
    assert [s.detail for s in found] == ["said 'supervisor'"]


@pytest.mark.parametrize(("item", "inbound"), [
    (entry("call", direction="inbound"), True),
    (entry("call"), True),
    (entry("call", direction="outbound"), False),
    (entry("email", direction="outbound"), False),
    (entry("email", direction=None), True),
    (entry("chat"), True),
    (entry("social"), True),
    (entry("survey", score=1), False),
    ({"channel": "call", "payload": "x"}, True),
    ({"channel": 3}, False),
    (None, False),
])
def test_which_entries_are_the_customer_reaching_us(item: object, inbound: bool) -> None:
    assert is_inbound_contact(item) is inbound


def test_abandoned_calls() -> None:
    assert is_abandoned(entry("call", outcome="abandoned"))
    assert is_abandoned(entry("call", outcome=" Abandoned "))
    assert not is_abandoned(entry("call", outcome="resolved"))
    assert not is_abandoned(entry("chat", outcome="abandoned"))
    assert not is_abandoned(entry("call", outcome=None))
    assert not is_abandoned({"channel": "call", "payload": ["abandoned"]})


sentiments = st.none() | st.builds(Sentiment, st.floats(-1, 1), st.sampled_from(
    ["negative", "neutral", "positive"]), st.sampled_from(["model", "payload"]),
    st.integers(0, 1000))
keys = st.sampled_from(["messages", "subject", "body", "direction", "text", "sentiment",
                        "public", "transfers", "wait_seconds", "outcome", "call_id",
                        "chat_id", "thread_id"]) | st.text(max_size=8)
entries = st.fixed_dictionaries(
    {"channel": st.sampled_from(["call", "chat", "email", "social", "survey"]) | json_values,
     "payload": st.dictionaries(keys, json_values, max_size=8) | json_values},
    optional={"event_id": json_values, "occurred_at": json_values})


@fuzz(400)
@given(item=entries | json_values, sentiment=sentiments)
def test_entry_signals_never_raise(item: object, sentiment: Sentiment | None) -> None:
    found = entry_signals(item, sentiment, CONFIG)
    for signal in found:
        assert isinstance(signal.as_json(), dict) and isinstance(signal.contact, str)
    is_inbound_contact(item)
    is_abandoned(item)
    contact_of(item)
    if isinstance(item, dict):
        score_entry(item.get("channel"), item.get("payload"), CONFIG.sentiment)  # type: ignore[arg-type]
