"""domain.relevance: the [relevance] section and `intents_of`, the worker's one-pass
answer, which must agree with the agent view's per-intent `Matcher` on every entry."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cxt.traffic import TrafficGenerator, make_customers
from dashboard.prompts import load_agent_config
from domain.contacts import contact_key
from domain.relevance import (
    Matcher,
    RelevanceConfigError,
    anchor_of,
    intents_of,
    load_relevance,
    parse_relevance,
)
from tests.support.helpers import REPO

SHIPPED = REPO / "config" / "agent_context.toml"
RELEVANCE = {"billing": ("bill", "refund", "direct debit"), "delivery": ("deliver", "delay"),
             "deliveries": ("delivery",), "disputes": ()}


def _entry(**payload: Any) -> dict:
    return {"event_id": "e1", "channel": "email", "type": "email.received",
            "payload": payload}


def _by_matcher(entry: dict, relevance: dict) -> tuple[str, ...]:
    return tuple(i for i in relevance if Matcher(i, relevance).directly(entry))


@pytest.mark.parametrize(("payload", "expected"), [
    ({"intent": " Billing "}, ("billing",)),
    ({"ivr_path": ["main", "DISPUTES"]}, ("disputes",)),  # an intent without keywords
    ({"intent": "sales"}, ()),  # not configured: the worker indexes configured intents only
    ({"subject": "Your bill and the parcel delay"}, ("billing", "delivery")),
    ({"subject": "rebilled"}, ()),  # keywords start a word
    ({"comment": "Direct\n debit failed"}, ("billing",)),
    ({"reason_codes": ["delivery_delay"]}, ("delivery", "deliveries")),
    # Overlapping keywords of two intents at one place both count.
    ({"text": "no delivery yet"}, ("delivery", "deliveries")),
    ({"text": 5, "subject": None, "reason_codes": "bill"}, ()),
])
def test_intents_of_an_entry(payload: dict, expected: tuple[str, ...]) -> None:
    entry = _entry(**payload)
    assert intents_of(entry, RELEVANCE) == expected
    assert intents_of(entry, RELEVANCE) == _by_matcher(entry, RELEVANCE)


def test_no_payload_or_no_configuration_means_no_intent() -> None:
    assert intents_of({"payload": "bill"}, RELEVANCE) == ()
    assert intents_of(_entry(intent="billing"), {}) == ()


def test_intents_of_agrees_with_the_matcher_on_the_demo_traffic() -> None:
    relevance = load_relevance(SHIPPED)
    generator = TrafficGenerator(make_customers(50, 3), 3, unhappy_share=0.2)
    found = 0
    for _, envelope in generator.take(3000):
        entry = {"channel": envelope["type"].split(".")[0], **envelope}
        assert intents_of(entry, relevance) == _by_matcher(entry, relevance), envelope
        found += bool(intents_of(entry, relevance))
    assert found > 1000  # the demo's contacts carry intents: the test looked at some


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["intent", "subject", "comment", "text", "ivr_path",
                                        "reason_codes"]),
                       st.one_of(st.text(alphabet="bil refundy_\n DELAY", max_size=30),
                                 st.lists(st.text(alphabet="bil delay_", max_size=12),
                                          max_size=3))))
def test_intents_of_agrees_with_the_matcher_on_any_payload(payload: dict) -> None:
    entry = _entry(**payload)
    assert intents_of(entry, RELEVANCE) == _by_matcher(entry, RELEVANCE)


def test_the_worker_reads_the_same_section_as_the_dashboard() -> None:
    assert load_relevance(SHIPPED) == load_agent_config(SHIPPED).relevance


def test_a_bad_section_or_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RelevanceConfigError, match=r"relevance\.billing: keywords is required"):
        parse_relevance({"billing": {}}, "x.toml")
    with pytest.raises(RelevanceConfigError, match="listed twice"):
        parse_relevance({"Billing": {"keywords": ["a"]}, "billing": {"keywords": ["b"]}},
                        "x.toml")
    with pytest.raises(RelevanceConfigError, match="not found"):
        load_relevance(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[relevance.billing\n")
    with pytest.raises(RelevanceConfigError, match=re.escape(str(bad))):
        load_relevance(bad)


def test_the_anchor_is_what_merges_entries_into_one_item() -> None:
    generator = TrafficGenerator(make_customers(20, 4), 4)
    for _, envelope in generator.take(500):
        entry = {"channel": envelope["type"].split(".")[0], **envelope}
        key = contact_key(entry) if entry["channel"] in ("call", "chat") else None
        expected = key[1] if key is not None else entry["event_id"]
        assert anchor_of(entry) == expected
    assert anchor_of({"channel": "call", "event_id": "e", "payload": {"call_id": 7}}) == "7"
    assert anchor_of({"channel": "call", "event_id": "e", "payload": {"call_id": True}}) == "e"
