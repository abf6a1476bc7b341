"""Precision and recall of the shipped text detector on the labelled fixture (issue 14).

The detector is what the worker runs on a text interaction: a negative_sentiment or an
escalation_language signal from domain.signals.entry_signals, with config/signals.toml.
tests/fixtures/customer_texts.jsonl was labelled before the detector existed (its
README); the figures below are the ones reported in docs/negative-interactions.md
("Quality"), floored to two decimals.  Lower them only with a reason in the commit.

    .venv/bin/python -m pytest tests/unit/domain/test_detector_quality.py -q -s

prints the figures and a breakdown per tag.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from domain.sentiment import score_entry
from domain.signal_config import (
    DEFAULT_SIGNALS_PATH,
    EscalationSection,
    SentimentSection,
    SignalConfig,
    load_signals,
)
from domain.signals import ESCALATION, NEGATIVE_SENTIMENT, entry_signals
from tests.support.helpers import REPO

FIXTURE = REPO / "tests" / "fixtures" / "customer_texts.jsonl"
PRECISION_AT_LEAST = 0.88
RECALL_AT_LEAST = 0.62
TEXT_RULES = (NEGATIVE_SENTIMENT, ESCALATION)


def rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def as_entry(row: dict[str, Any]) -> dict[str, Any]:
    """The timeline entry the row's text would arrive in, the customer's words in place."""
    channel, text = row["channel"], row["text"]
    if channel == "chat":
        payload: dict[str, Any] = {"chat_id": row["id"], "messages": [
            {"from": "customer", "text": text, "at": "2026-12-01T10:00:00Z"}]}
    elif channel == "email":
        payload = {"message_id": row["id"], "thread_id": row["id"], "direction": "inbound",
                   "body": text}
    else:
        payload = {"post_id": row["id"], "text": text, "public": row.get("public")}
    return {"event_id": row["id"], "customer_id": "C-1", "channel": channel,
            "type": f"{channel}.received", "occurred_at": "2026-12-01T10:00:00Z",
            "payload": payload}


def flagged(row: dict[str, Any], config: SignalConfig) -> bool:
    item = as_entry(row)
    sentiment = score_entry(item["channel"], item["payload"], config.sentiment)
    return any(s.rule in TEXT_RULES for s in entry_signals(item, sentiment, config))


@pytest.fixture(scope="module")
def outcomes() -> list[tuple[dict[str, Any], bool]]:
    config = load_signals(DEFAULT_SIGNALS_PATH)
    return [(row, flagged(row, config)) for row in rows()]


def test_precision_and_recall_on_the_labelled_texts(
        outcomes: list[tuple[dict[str, Any], bool]]) -> None:
    counts = Counter((row["label"] == "negative", hit) for row, hit in outcomes)
    tp, fp, fn = counts[True, True], counts[False, True], counts[True, False]
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    print(f"\n{len(outcomes)} texts: precision {precision:.3f} ({tp}/{tp + fp} flagged are "
          f"negative), recall {recall:.3f} ({tp}/{tp + fn} negative are flagged)")
    print(f"{'tag':<14}{'texts':>6}{'negative':>9}{'caught':>7}{'false alarms':>13}")
    tags = sorted({tag for row, _ in outcomes for tag in row["tags"]} | {"(none)"})
    for tag in tags:
        tagged = [(row, hit) for row, hit in outcomes
                  if tag in row["tags"] or (tag == "(none)" and not row["tags"])]
        negative = [hit for row, hit in tagged if row["label"] == "negative"]
        false_alarms = sum(hit for row, hit in tagged if row["label"] != "negative")
        print(f"{tag:<14}{len(tagged):>6}{len(negative):>9}{sum(negative):>7}{false_alarms:>13}")
    assert precision >= PRECISION_AT_LEAST, f"precision fell to {precision:.3f}"
    assert recall >= RECALL_AT_LEAST, f"recall fell to {recall:.3f}"


def test_the_measure_is_not_vacuous() -> None:
    # A threshold nothing reaches and no phrases flag nothing: the counts come from signals.
    blind = SignalConfig(sentiment=SentimentSection(negative_at_or_below=-1.0,
                                                    public_social_weight=1.0),
                         escalation=EscalationSection(enabled=False))
    assert not any(flagged(row, blind) for row in rows())
