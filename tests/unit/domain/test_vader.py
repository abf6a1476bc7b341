"""domain.vader gives exactly vaderSentiment's compound score, faster.

The reference is the installed package itself (SentimentIntensityAnalyzer), on
the labelled fixture, 20,000 texts of the demo generator, VADER's own examples
(read from its module's demo block) and generated text built to hit every rule.

    .venv/bin/python -m pytest tests/unit/domain/test_vader.py -q -s

prints the µs per text of both.
"""

from __future__ import annotations

import ast
import inspect
import json
import time
from functools import cache
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from vaderSentiment import vaderSentiment as package  # type: ignore[import-untyped]

from cxt.traffic import TrafficGenerator, make_customers
from domain import vader
from domain.sentiment import customer_text
from tests.support.fuzz import fuzz
from tests.support.helpers import REPO

FIXTURE = REPO / "tests" / "fixtures" / "customer_texts.jsonl"
ANALYSER = package.SentimentIntensityAnalyzer()


def reference(text: str) -> float:
    score: float = ANALYSER.polarity_scores(text)["compound"]
    return score


def mismatches(texts: list[str]) -> list[tuple[str, float, float]]:
    return [(text, reference(text), vader.compound(text)) for text in texts
            if abs(reference(text) - vader.compound(text)) > 1e-9]


@cache
def demo_texts(count: int = 20_000) -> list[str]:
    """The customer words the worker would score in the demo's traffic."""
    generator = TrafficGenerator(make_customers(1000, seed=1), seed=1)
    texts: list[str] = []
    while len(texts) < count:
        channel, event = generator.next_event()
        text = customer_text(channel, event.get("payload"), 100_000)
        if text is not None:
            texts.append(text)
    return texts


def fixture_texts() -> list[str]:
    return [json.loads(line)["text"]
            for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def vader_examples() -> list[str]:
    """Every example string in vaderSentiment's own demo (its module's __main__ block)."""
    tree = ast.parse(inspect.getsource(package))
    names = {"sentences", "tricky_sentences", "paragraph", "conceptList", "nonEnglish_sentences"}
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(
                isinstance(target, ast.Name) and target.id in names for target in node.targets):
            found += [leaf.value for leaf in ast.walk(node.value)
                      if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str)]
    return found


# --- the same score --------------------------------------------------------------------

def test_the_lexicon_and_emoji_are_the_installed_packages() -> None:
    assert ANALYSER.lexicon == vader._LEXICON
    one_character = {emoji: text for emoji, text in ANALYSER.emojis.items() if len(emoji) == 1}
    assert {ord(emoji): " " + text for emoji, text in one_character.items()} == vader._EMOJI
    assert not any(emoji.isascii() for emoji in ANALYSER.emojis)  # so ASCII text skips them
    assert not [path for path in REPO.glob("*/**/*lexicon*.txt") if ".venv" not in path.parts]


def test_the_labelled_fixture_scores_the_same() -> None:
    texts = fixture_texts()
    assert len(texts) > 300
    assert mismatches(texts) == []


def test_twenty_thousand_demo_texts_score_the_same() -> None:
    texts = demo_texts()
    assert len(texts) == 20_000
    assert any(not text.isascii() for text in texts)  # the demo's emoji are in there
    assert mismatches(texts) == []


def test_vaders_own_examples_score_the_same() -> None:
    examples = vader_examples()
    assert len(examples) > 40
    assert "Not bad at all" in examples and "Catch utf-8 emoji such as 💘 and 💋 and 😁" in examples
    paragraph = next(text for text in examples if text.startswith("It was one of the worst"))
    sentences = [part.strip() + "." for part in paragraph.split(".") if part.strip()]
    assert mismatches(examples + sentences) == []


@pytest.mark.parametrize(("text", "expected"), [
    ("The book was good.", 0.4404),
    ("VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", 0.9469),
    ("VADER is not smart, handsome, nor funny.", -0.7424),
    ("At least it isn't a horrible book.", 0.431),
    ("Today only kinda sux! But I'll get by, lol", 0.5249),
    ("Sentiment analysis has never been this good!", 0.5672),
    ("With VADER, sentiment analysis is the shit!", 0.6476),
    ("Roger Dodger is one of the least compelling variations on this theme.", -0.1695),
    ("", 0.0),
    ("   \n\t ", 0.0),
])
def test_known_scores(text: str, expected: float) -> None:
    """Figures from VADER's README, so a change to both at once still shows."""
    assert vader.compound(text) == expected == reference(text)


# Rule by rule: each exercises a branch of VADER's scoring.
RULE_TEXTS = [
    "no good", "no", "not no good", "no way or good", "no problem nor bad", "good no",
    "NO good at all", "the service was GREAT but the wait was AWFUL",
    "GOOD GOOD GOOD", "GOOD", "very VERY good", "VERY good", "VERY bad", "KINDA bad",
    "kind of good", "kind of", "it was kind", "sort of bad", "just enough good",
    "never so good", "never this bad", "never good", "so good", "this good", "so this bad",
    "without doubt good", "without a doubt, good", "without any doubt bad",
    "at least good", "very least good", "least good", "the least good thing",
    "it was the kiss of death", "it is the shit", "this is the bomb", "such a bad ass",
    "yeah right", "kiss of death",
    "a car to die for", "my beating heart", "the bus stop", "you are the shit indeed",
    "good but bad but good", "good good but bad bad", "nice but okay", "it was nice, but okay",
    "but", "bad but", "but good",
    "great, but, awful", "BUT great", "good bad good but bad good bad",
    "happy happy happy", "good!", "good!!!!!!!", "bad??", "bad???", "bad????", "good?!?!",
    "? ? good", "good " + "!" * 10, ":) :( :D", "ok :-)", "no.", "no. good", "n't good",
    "didn't like it", "don't love it", "isn't bad", "ain't good", "uh-uh good",
    "😁😁😁", "😁abc good", "good😁", "I'm 😡 with this", "🔛 good", "🆙!", "💘 and 💋",
    "Ärger ist schlecht, 😊", "İstanbul good", "café bad", "good\u00a0bad", "\u2003good\u2003",
]


def test_each_rule_scores_the_same() -> None:
    assert mismatches(RULE_TEXTS) == []


# --- generated text ------------------------------------------------------------------

RULE_WORDS = [
    "but", "no", "or", "nor", "least", "at", "very", "never", "so", "this", "without",
    "doubt", "kind", "of", "sort", "the", "shit", "bomb", "bad", "ass", "badass", "kiss",
    "death", "to", "die", "for", "yeah", "right", "bus", "stop", "beating", "heart",
    "just", "enough", "not", "isn't", "don't", "n't", "a", "is", "it", "and",
]
# A few words often, so values repeat: VADER's "but" rule finds a sentiment by value, and
# "nice" (1.8) before a "but" halves to "okay" (0.9) after it.
COMMON_WORDS = ["good", "bad", "great", "awful", "happy", "love", "hate", "nice", "poor",
                "sorry", "thanks", "help", "ridiculous", "problem", "useless", "fine", "okay"]
# The neighbourhoods the rules look for, which random words rarely line up.
PHRASES = ["no good or", "no bad nor", "no", "very least", "at least", "without doubt",
           "without a doubt", "never so", "never this", "kind of", "sort of", "just enough",
           "the shit", "not so", "not the", "not very", "really not", "no really"]
LEXICON_WORDS = sorted(ANALYSER.lexicon)
EMOJI = sorted(ANALYSER.emojis)
word = st.one_of(
    st.sampled_from(RULE_WORDS),
    st.sampled_from(COMMON_WORDS),
    st.sampled_from(PHRASES),
    st.sampled_from(LEXICON_WORDS),
    st.sampled_from(sorted(package.BOOSTER_DICT)),
    st.sampled_from(package.NEGATE),
    st.sampled_from(EMOJI),
    st.text(max_size=6),
)
shape = st.sampled_from([
    str.lower, str.lower, str.lower, str.upper, str.title,
    lambda w: w + "!", lambda w: w + "?", lambda w: w + ",", lambda w: w + ".",
    lambda w: "(" + w + ")", lambda w: "'" + w + "'", lambda w: w + "!!!", lambda w: w + "??",
])
gap = st.sampled_from([" ", " ", " ", "  ", "\n", "", ", ", "! ", "? ", " - ", "\t"])


@st.composite
def sentences(draw: Any) -> str:
    parts = []
    for _ in range(draw(st.integers(0, 14))):
        parts.append(draw(shape)(draw(word)))
        parts.append(draw(gap))
    return "".join(parts)


@fuzz(3000)
@given(sentences())
def test_generated_sentences_score_the_same(text: str) -> None:
    assert vader.compound(text) == reference(text), text


@fuzz(1500)
@given(st.text(max_size=200))
def test_arbitrary_text_scores_the_same(text: str) -> None:
    assert vader.compound(text) == reference(text), text


def test_a_full_word_cache_starts_again(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vader, "_WORD_CACHE_LIMIT", 5)
    vader._WORDS.clear()
    text = "one two three four five six seven eight, not good at all"
    assert vader.compound(text) == reference(text)
    assert len(vader._WORDS) <= 5


# --- faster --------------------------------------------------------------------------

def per_text_us(score: Any, texts: list[str]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for text in texts:
            score(text)
        best = min(best, time.perf_counter() - started)
    return best / len(texts) * 1e6


def test_at_least_twice_as_fast_as_vadersentiment() -> None:
    # Measured at ~7x on a quiet machine; 2x leaves room for a busy one.
    texts = demo_texts()[:3000]
    ours = per_text_us(vader.compound, texts)
    theirs = per_text_us(reference, texts)
    mean = sum(map(len, texts)) / len(texts)
    print(f"\n{len(texts)} demo texts of {mean:.0f} chars: vaderSentiment {theirs:.1f} µs/text, "
          f"domain.vader {ours:.1f} µs/text ({theirs / ours:.1f}x)")
    assert ours * 2 <= theirs
