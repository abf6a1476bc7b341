"""The signals file (domain.signal_config): the shipped one loads, each kind of mistake is
named with its file, section and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.signal_config import (
    DEFAULT_SIGNALS_PATH,
    SignalConfig,
    SignalsError,
    load_signals,
)
from kernel.errors import ConfigError
from tests.support.helpers import REPO


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "signals.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(path: Path) -> str:
    with pytest.raises(SignalsError) as caught:
        load_signals(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message


PHRASES = '[escalation]\nphrases = ["complaint"]\n'


def test_the_shipped_file_loads_with_what_its_comments_say() -> None:
    assert DEFAULT_SIGNALS_PATH == REPO / "config" / "signals.toml"
    config = load_signals(DEFAULT_SIGNALS_PATH)
    s, o, r = config.sentiment, config.operational, config.repeat_contact
    assert s.enabled and s.max_chars == 1000 and s.public_social_weight == 1.5
    assert s.use_source_sentiment and -0.5 <= s.negative_at_or_below <= -0.2
    assert (r.contacts, r.within_days) == (3, 7)
    assert (o.min_transfers, o.wait_over_seconds, o.abandoned_followup_minutes) == (3, 600, 60)
    for phrase in ("complaint", "supervisor", "ombudsman", "regulator", "cancel my contract"):
        assert phrase in config.escalation.phrases


def test_describe_lists_every_signal_with_its_thresholds() -> None:
    text = load_signals(DEFAULT_SIGNALS_PATH).describe()
    assert text.startswith(f"{DEFAULT_SIGNALS_PATH}: 6 signals, 6 on")
    for words in ("negative_sentiment", "escalation_language", "'ombudsman'", "repeat_contact",
                  "within 7 days", "many_transfers", "3 or more times", "long_wait", "600 s",
                  "abandoned_then_contact", "60 minutes", "first 1000 characters"):
        assert words in text


def test_sections_and_keys_left_out_take_their_defaults(tmp_path: Path) -> None:
    config = load_signals(write(tmp_path, PHRASES))
    assert config.sentiment == SignalConfig().sentiment
    assert config.operational == SignalConfig().operational
    assert config.escalation.phrases == ("complaint",)


def test_switched_off_sections_say_so(tmp_path: Path) -> None:
    config = load_signals(write(tmp_path, "[escalation]\nenabled = false\n"
                                          "[operational]\nenabled = false\n"))
    assert not config.escalation.enabled and config.escalation.any_phrase is None
    assert "  escalation_language    off\n" in config.describe()
    assert "6 signals, 2 on" in config.describe()


def test_phrases_are_normalised_and_whole_words(tmp_path: Path) -> None:
    phrases = '"Complaint", "won\u2019t  renew", "solicitor*", "cancel * contract"'
    config = load_signals(write(tmp_path, f"[escalation]\nphrases = [{phrases}]\n"))
    said = config.escalation.said
    assert config.escalation.phrases == ("complaint", "won't renew", "solicitor*",
                                         "cancel * contract")
    assert said("I want to make a COMPLAINT") == "complaint"
    assert said("no complaints at all") is None  # whole words
    assert said("I won\u2019t renew") == "won't renew"
    assert said("my solicitors will be in touch") == "solicitors"
    assert said("I will cancel this contract") == "cancel this contract"
    assert said("") is None


def test_the_longest_phrase_is_the_one_reported(tmp_path: Path) -> None:
    config = load_signals(write(tmp_path, '[escalation]\nphrases = ["complaint", '
                                          '"formal complaint"]\n'))
    assert config.escalation.said("this is a formal complaint") == "formal complaint"


@pytest.mark.parametrize(("text", "expected"), [
    ("[sentiment]\nnegative_at_or_belo = -0.3\n" + PHRASES,
     "[sentiment]: unknown key 'negative_at_or_belo' (allowed: enabled, negative_at_or_below"),
    ("[sentiment]\nnegative_at_or_belo = -0.3\n" + PHRASES,
     "did you mean 'negative_at_or_below'?"),
    ("[sentimnet]\nenabled = true\n" + PHRASES, "top level: unknown key 'sentimnet'"),
    ("sentiment = 1\n" + PHRASES, "sentiment must be a section, written [sentiment]"),
    ("[sentiment]\nnegative_at_or_below = \"-0.3\"\n" + PHRASES,
     "[sentiment]: negative_at_or_below must be a number from -1 to 1 (got '-0.3')"),
    ("[sentiment]\nnegative_at_or_below = -3\n" + PHRASES,
     "[sentiment]: negative_at_or_below must be a number from -1 to 1 (got -3)"),
    ("[sentiment]\nnegative_at_or_below = nan\n" + PHRASES,
     "[sentiment]: negative_at_or_below must be a number from -1 to 1 (got nan)"),
    ("[sentiment]\nnegative_at_or_below = true\n" + PHRASES,
     "[sentiment]: negative_at_or_below must be a number from -1 to 1 (got True)"),
    ("[sentiment]\nnegative_at_or_below = 0.5\npositive_at_or_above = 0.3\n" + PHRASES,
     "[sentiment]: negative_at_or_below (0.5) must be below positive_at_or_above (0.3)"),
    ("[sentiment]\nenabled = \"yes\"\n" + PHRASES,
     "[sentiment]: enabled must be true or false (got 'yes')"),
    ("[sentiment]\nmax_chars = 10.5\n" + PHRASES,
     "[sentiment]: max_chars must be a whole number from 20 to 100000 (got 10.5)"),
    ("[sentiment]\npublic_social_weight = 0.5\n" + PHRASES,
     "[sentiment]: public_social_weight must be a number from 1 to 10 (got 0.5)"),
    ("[sentiment]\nuse_source_sentiment = 1\n" + PHRASES,
     "[sentiment]: use_source_sentiment must be true or false (got 1)"),
    ("[escalation]\nenabled = true\n", "[escalation]: phrases is required while enabled"),
    ("[escalation]\nphrases = []\n", "[escalation]: phrases must be a list of at least one"),
    ("[escalation]\nphrases = \"complaint\"\n",
     "[escalation]: phrases must be a list of at least one text"),
    ("[escalation]\nphrases = [\"complaint\", 3]\n",
     "[escalation]: phrases must contain only non-empty texts (got 3)"),
    ("[escalation]\nphrases = [\"*\"]\n",
     "[escalation]: phrases must contain letters or digits (got '*')"),
    ("[escalation]\nphrases = [\"Manager\", \"manager\"]\n",
     "[escalation]: phrases lists 'manager' twice"),
    ("[escalation]\nphrase = [\"complaint\"]\n",
     "[escalation]: unknown key 'phrase' (allowed: enabled, phrases); did you mean 'phrases'?"),
    ("[repeat_contact]\ncontacts = 1\n" + PHRASES,
     "[repeat_contact]: contacts must be a whole number from 2 to 100 (got 1)"),
    ("[repeat_contact]\nwithin_days = true\n" + PHRASES,
     "[repeat_contact]: within_days must be a whole number from 1 to 400 (got True)"),
    ("[operational]\nmin_transfers = 0\n" + PHRASES,
     "[operational]: min_transfers must be a whole number from 1 to 100 (got 0)"),
    ("[operational]\nwait_over_seconds = \"10m\"\n" + PHRASES,
     "[operational]: wait_over_seconds must be a whole number from 1 to 86400 (got '10m')"),
    ("[operational]\nabandoned_followup_minutes = 99999\n" + PHRASES,
     "[operational]: abandoned_followup_minutes must be a whole number from 1 to 10080"),
    ("[operational]\nwait_seconds = 600\n" + PHRASES,
     "[operational]: unknown key 'wait_seconds'"),
])
def test_each_mistake_names_its_section_and_key(tmp_path: Path, text: str, expected: str) -> None:
    message = error_of(write(tmp_path, text))
    assert expected in message, message


def test_bad_toml_names_the_line(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, "[sentiment]\nenabled = tru\n"))
    assert "not valid TOML" in message and "line 2" in message


@pytest.mark.parametrize("name", ["missing.toml", "latin1.toml"])
def test_an_unreadable_file_is_a_config_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    if name == "latin1.toml":
        path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot read the signals file"):
        load_signals(path)


def test_the_first_word_prefilter_never_changes_what_is_said() -> None:
    """`said` skips the search for texts with none of the phrases' first words; on the
    labelled fixture, demo texts and generated ones it answers as the search alone."""
    import dataclasses
    import json

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from cxt.traffic import NEGATIVE_LINES
    from domain.signal_config import load_signals
    from tests.support.helpers import REPO

    escalation = load_signals().escalation
    assert escalation.anchors is not None
    unfiltered = dataclasses.replace(escalation, anchors=None)
    fixture = [json.loads(line)["text"] for line in
               (REPO / "tests/fixtures/customer_texts.jsonl").read_text().splitlines()]
    for text in [*fixture, *NEGATIVE_LINES]:
        assert escalation.said(text) == unfiltered.said(text), text

    words = st.sampled_from([*escalation.phrases, "won\u2019t", "WON'T", "solicitors", "I'm",
                             "cancel", "my", "contract", "!", "complaint's", "ombudsman.",
                             "managerial", "disgraceful", "x", "\u00a0", "\n"])

    @settings(max_examples=2000, deadline=None)
    @given(st.lists(st.one_of(words, st.text(max_size=8)), max_size=12).map(" ".join))
    def same(text: str) -> None:
        assert escalation.said(text) == unfiltered.said(text)

    same()
