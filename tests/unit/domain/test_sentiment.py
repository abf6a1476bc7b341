"""The customer's own words and their sentiment (domain.sentiment)."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.sentiment import Sentiment, customer_text, label_of, score_entry
from domain.signal_config import DEFAULT_SIGNALS_PATH, SentimentSection, load_signals
from tests.support.fuzz import fuzz, json_values

CONFIG = load_signals(DEFAULT_SIGNALS_PATH).sentiment


def chat(*lines: object) -> dict:
    return {"chat_id": "CH-1", "messages": list(lines)}


def line(who: str, text: object) -> dict:
    return {"from": who, "text": text, "at": "2026-12-01T10:00:00Z"}


# --- customer_text -------------------------------------------------------------------

def test_only_the_customers_chat_lines_are_read() -> None:
    payload = chat(line("agent", "Sorry for the terrible wait, awful day"),
                   line("customer", "my router is dead"),
                   line("agent", "Let me check"),
                   line("customer", "still nothing"))
    assert customer_text("chat", payload, 1000) == "my router is dead\nstill nothing"


@pytest.mark.parametrize("messages", [
    12, None, "hello", {"from": "customer", "text": "hi"}, [], [line("agent", "hello")],
    [None, 3, "text", [], {"from": "customer"}, {"from": "customer", "text": 5},
     {"text": "no sender"}, {"from": "Customer ", "text": "not exactly customer"},
     line("customer", ""), line("customer", "   ")],
])
def test_a_chat_without_customer_lines_has_no_text(messages: object) -> None:
    assert customer_text("chat", {"messages": messages}, 1000) is None


def test_malformed_chat_lines_are_skipped_not_fatal() -> None:
    payload = chat(None, "raw", line("customer", 7), line("customer", "this is awful"), [1])
    assert customer_text("chat", payload, 1000) == "this is awful"


@pytest.mark.parametrize("direction", ["inbound", None, "absent"])
def test_an_inbound_email_is_its_subject_and_body(direction: str | None) -> None:
    payload: dict = {"subject": "Broken again", "body": "Third engineer visit."}
    if direction != "absent":
        payload["direction"] = direction
    assert customer_text("email", payload, 1000) == "Broken again\nThird engineer visit."


@pytest.mark.parametrize("direction", ["outbound", "OUTBOUND", "internal", 1, True])
def test_an_email_not_known_to_be_from_the_customer_has_no_text(direction: object) -> None:
    payload = {"subject": "Your complaint", "body": "We are sorry", "direction": direction}
    assert customer_text("email", payload, 1000) is None


def test_an_email_with_only_one_part_or_none() -> None:
    assert customer_text("email", {"subject": "Refund?"}, 1000) == "Refund?"
    assert customer_text("email", {"body": "Where is it", "subject": None}, 1000) == "Where is it"
    assert customer_text("email", {"subject": 3, "body": ["x"]}, 1000) is None


def test_social_text_and_the_channels_without_words() -> None:
    assert customer_text("social", {"text": "@Nova down again"}, 1000) == "@Nova down again"
    assert customer_text("social", {"text": None}, 1000) is None
    assert customer_text("call", {"text": "x", "subject": "y", "messages": []}, 1000) is None
    assert customer_text("survey", {"comment": "awful", "text": "awful"}, 1000) is None
    assert customer_text("nosuch", {"text": "awful"}, 1000) is None
    assert customer_text("chat", None, 1000) is None
    assert customer_text("chat", ["messages"], 1000) is None


def test_text_is_capped_at_max_chars() -> None:
    huge = "angry " * 200_000
    assert customer_text("social", {"text": huge}, 1000) == huge[:1000]
    assert customer_text("email", {"subject": "S" * 10, "body": huge}, 50) == \
        "S" * 10 + "\n" + huge[:39]
    lines = [line("customer", "x" * 30)] * 10_000
    text = customer_text("chat", {"messages": lines}, 100)
    assert text is not None and len(text) == 100 and text.startswith("x" * 30 + "\n")
    # The subject fills the cap: the body is not joined on at all.
    assert customer_text("email", {"subject": "S" * 60, "body": "more"}, 60) == "S" * 60


# --- score_entry ---------------------------------------------------------------------

def test_angry_words_are_negative_and_kind_ones_positive() -> None:
    angry = score_entry("chat", chat(line("customer", "This is absolutely ridiculous, "
                                                      "worst service ever")), CONFIG)
    kind = score_entry("social", {"text": "Thank you so much, brilliant help today!"}, CONFIG)
    plain = score_entry("email", {"subject": "Engineer visit", "body": "Is it at 9am?"}, CONFIG)
    assert angry is not None and angry.label == "negative" and angry.source == "model"
    assert angry.chars == len("This is absolutely ridiculous, worst service ever")
    assert kind is not None and kind.label == "positive"
    assert plain is not None and plain.label == "neutral"


def test_the_sources_own_score_wins_unless_switched_off() -> None:
    payload = {"text": "Thank you so much, brilliant help today!", "sentiment": -0.8}
    given_score = score_entry("social", payload, CONFIG)
    assert given_score == Sentiment(-0.8, "negative", "payload", 0)
    own = score_entry("social", payload, replace(CONFIG, use_source_sentiment=False))
    assert own is not None and own.source == "model" and own.label == "positive"
    # Only from the payload when it has no text at all.
    assert score_entry("social", {"sentiment": 0.5}, CONFIG) == \
        Sentiment(0.5, "positive", "payload", 0)


@pytest.mark.parametrize("bad", [True, False, "-0.9", -1.5, 2, float("nan"), None, [0.1]])
def test_a_bad_source_score_is_ignored(bad: object) -> None:
    result = score_entry("social", {"text": "worst service ever", "sentiment": bad}, CONFIG)
    assert result is not None and result.source == "model" and result.label == "negative"


def test_no_text_or_scoring_off_gives_none() -> None:
    assert score_entry("call", {"transfers": 4}, CONFIG) is None
    assert score_entry("chat", {"messages": 14}, CONFIG) is None
    assert score_entry("social", {"text": "awful"}, replace(CONFIG, enabled=False)) is None
    assert score_entry("social", "awful", CONFIG) is None


def test_labels_at_the_thresholds() -> None:
    config = SentimentSection(negative_at_or_below=-0.4, positive_at_or_above=0.3)
    assert [label_of(s, config) for s in (-1, -0.4, -0.39, 0, 0.29, 0.3, 1)] == [
        "negative", "negative", "neutral", "neutral", "neutral", "positive", "positive"]


def test_as_json_is_the_timeline_field() -> None:
    assert Sentiment(-0.71234, "negative", "model", 86).as_json() == \
        {"score": -0.712, "label": "negative", "source": "model", "chars": 86}


payloads = st.dictionaries(
    st.sampled_from(["messages", "subject", "body", "direction", "text", "sentiment",
                     "public", "from"]) | st.text(max_size=8),
    json_values | st.lists(st.fixed_dictionaries(
        {"from": st.sampled_from(["customer", "agent"]) | json_values, "text": json_values})),
    max_size=6)


@fuzz(300)
@given(channel=st.sampled_from(["call", "chat", "email", "social", "survey"]) | st.text(),
       payload=payloads | json_values)
def test_scoring_never_raises(channel: str, payload: dict) -> None:
    result = score_entry(channel, payload, CONFIG)
    assert result is None or (-1 <= result.score <= 1 and result.chars <= CONFIG.max_chars)


def test_micro_timing_per_text() -> None:
    texts = ["my router is dead again and nobody has called me back",
             "Thank you so much, brilliant help today!",
             "could you cancel the appointment on friday please, thanks"]
    payloads_ = [{"text": t} for t in texts] * 300
    score_entry("social", payloads_[0], CONFIG)  # the one-off lexicon load
    started = time.perf_counter()
    for payload in payloads_:
        score_entry("social", payload, CONFIG)
    short = (time.perf_counter() - started) / len(payloads_) * 1e6
    long_payload = {"text": "the engineer never came and " * 100}
    started = time.perf_counter()
    for _ in range(50):
        score_entry("social", long_payload, CONFIG)
    capped = (time.perf_counter() - started) / 50 * 1e6
    print(f"\nsentiment: {short:.0f} us per short text, {capped:.0f} us per text capped at "
          f"{CONFIG.max_chars} characters")
    # Generous: a slow shared machine must not fail it, a per-call lexicon load would.
    assert short < 2_000 and capped < 20_000
