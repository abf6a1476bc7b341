"""The labelled customer-texts fixture (issue 14) keeps its shape.

`tests/fixtures/customer_texts.jsonl` was labelled before any negativity detector
existed; these checks guard its format and coverage, not any detector.  See
tests/fixtures/README.md for the label definition and the tags.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from tests.support.helpers import REPO

FIXTURE = REPO / "tests" / "fixtures" / "customer_texts.jsonl"

KEYS = {"id", "channel", "text", "label", "tags"}
CHANNELS = {"chat", "email", "social"}
LABELS = {"negative", "not_negative"}
TAGS = {"negation", "sarcasm", "emoji", "polite_cancel", "escalation", "non_english",
        "mixed", "question", "praise", "distress"}

MIN_LINES = 320
MIN_PER_CHANNEL = 80
MIN_PER_TAG = 15
MAX_TEXT_CHARS = 1000

EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Nine or more digits, optionally separated by single spaces, dashes or dots
# (07700 900123, +44 20 7946 0000, 123-456-7890): a phone or account number.
DIGIT_RUN = re.compile(r"\d(?:[\s.\-]?\d){8,}")


def _rows() -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(FIXTURE.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            pytest.fail(f"line {number} is not valid JSON: {error}")
        assert isinstance(row, dict), f"line {number} is not a JSON object"
        rows.append(row)
    return rows


ROWS = _rows()


def test_every_line_has_exactly_the_allowed_keys_and_valid_values() -> None:
    for row in ROWS:
        expected = KEYS | {"public"} if row.get("channel") == "social" else KEYS
        assert set(row) == expected, (row.get("id"), sorted(set(row) ^ expected))
        assert isinstance(row["id"], str) and row["id"], row
        assert row["channel"] in CHANNELS, row["id"]
        assert row["label"] in LABELS, row["id"]
        assert isinstance(row["text"], str) and row["text"].strip(), row["id"]
        assert isinstance(row["tags"], list), row["id"]
        assert set(row["tags"]) <= TAGS, (row["id"], sorted(set(row["tags"]) - TAGS))
        assert len(row["tags"]) == len(set(row["tags"])), row["id"]
        if row["channel"] == "social":
            assert isinstance(row["public"], bool), row["id"]


def test_ids_are_unique() -> None:
    ids = Counter(row["id"] for row in ROWS)
    assert [i for i, n in ids.items() if n > 1] == []


def test_size_and_channel_coverage() -> None:
    assert len(ROWS) >= MIN_LINES
    per_channel = Counter(row["channel"] for row in ROWS)
    for channel in CHANNELS:
        assert per_channel[channel] >= MIN_PER_CHANNEL, (channel, per_channel[channel])


def test_social_has_public_posts_and_private_messages() -> None:
    public = Counter(row["public"] for row in ROWS if row["channel"] == "social")
    assert public[True] > 0 and public[False] > 0, public


def test_every_tag_is_covered() -> None:
    per_tag = Counter(tag for row in ROWS for tag in row["tags"])
    short = {tag: per_tag[tag] for tag in TAGS if per_tag[tag] < MIN_PER_TAG}
    assert short == {}


def test_negative_share_is_balanced() -> None:
    share = sum(row["label"] == "negative" for row in ROWS) / len(ROWS)
    assert 0.35 <= share <= 0.60, share


def test_texts_are_short_and_hold_no_contact_details() -> None:
    for row in ROWS:
        text = row["text"]
        assert len(text) <= MAX_TEXT_CHARS, (row["id"], len(text))
        assert not EMAIL_ADDRESS.search(text), (row["id"], EMAIL_ADDRESS.search(text))
        assert not DIGIT_RUN.search(text), (row["id"], DIGIT_RUN.search(text))


def test_the_contact_detail_patterns_catch_what_they_should() -> None:
    for text in ("write to someone@example.com", "ring 07700 900123", "+44 20 7946 0000",
                 "account 12345678901"):
        assert EMAIL_ADDRESS.search(text) or DIGIT_RUN.search(text), text
    for text in ("order 55812", "£129 refund", "10/10", "@NovaMobile no signal", "since 2026"):
        assert not (EMAIL_ADDRESS.search(text) or DIGIT_RUN.search(text)), text
