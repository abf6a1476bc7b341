"""Sentiment of the customer's own words in a chat, an inbound e-mail or a social post.

Only what the customer wrote is read: an agent's "sorry for the trouble" says
nothing about how the customer feels, and an outbound e-mail is ours.  The text
is capped at `max_chars` (config/signals.toml) before scoring, so one pasted
log file costs what a long message costs.  The model is VADER (vaderSentiment):
a lexicon and rules that ship inside the package, so nothing is downloaded, and
a score people can explain from the words.  domain.vader scores it: a port of
the package's rules, several times faster, that gives the package's own scores.
A source that scores the text itself (a social monitoring tool) is believed
when it sends `payload.sentiment`.

This runs for every chat, e-mail and social event in the worker's batch: the
payload is read defensively (malformed fields are skipped, never raised on) and
nothing larger than `max_chars` is copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from domain.signal_config import SentimentSection

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
MODEL, PAYLOAD = "model", "payload"
CUSTOMER = "customer"
OUTBOUND = "outbound"
_INBOUND_EMAIL = (None, "inbound")  # absent or null: most mail systems only send what arrived


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class Sentiment:
    score: float  # -1 (negative) .. 1 (positive)
    label: str  # NEGATIVE, NEUTRAL or POSITIVE
    source: str  # MODEL or PAYLOAD
    chars: int  # characters scored; 0 when the source's own score was used

    def as_json(self) -> dict[str, Any]:
        return {"score": round(self.score, 3), "label": self.label, "source": self.source,
                "chars": self.chars}


def customer_text(channel: str, payload: Any, max_chars: int) -> str | None:
    """The customer's own words in this interaction, at most `max_chars`; None when none."""
    if not isinstance(payload, dict):
        return None
    if channel == "chat":
        text = _chat_text(payload.get("messages"), max_chars)
    elif channel == "email":
        if payload.get("direction") not in _INBOUND_EMAIL:
            return None
        text = _joined((payload.get("subject"), payload.get("body")), max_chars)
    elif channel == "social":
        value = payload.get("text")
        text = value[:max_chars] if isinstance(value, str) else ""
    else:  # calls carry no words, a survey's comment is the survey's business
        return None
    return text if text and not text.isspace() else None


def score_entry(channel: str, payload: Any, config: SentimentSection, *,
                text: str | None = None) -> Sentiment | None:
    """The interaction's sentiment, or None when it carries no customer text (or scoring is off).

    `text`: the entry's customer_text at the config's max_chars when the caller has it
    already (the worker reads it once for scoring and for the escalation phrases)."""
    if not config.enabled or not isinstance(payload, dict):
        return None
    if config.use_source_sentiment:
        given = payload.get("sentiment")
        # bool is an int in Python; `true` is bad data, not a score of 1.
        if isinstance(given, int | float) and not isinstance(given, bool) and -1 <= given <= 1:
            score = float(given)
            return Sentiment(score, label_of(score, config), PAYLOAD, 0)
    if text is None:
        text = customer_text(channel, payload, config.max_chars)
    if text is None:
        return None
    score = _compound()(text)
    return Sentiment(score, label_of(score, config), MODEL, len(text))


def label_of(score: float, config: SentimentSection) -> str:
    if score <= config.negative_at_or_below:
        return NEGATIVE
    if score >= config.positive_at_or_above:
        return POSITIVE
    return NEUTRAL


@cache
def _compound() -> Callable[[str], float]:
    # Imported on first use: domain.vader reads its lexicon files from the installed package.
    from domain.vader import compound

    return compound


def _chat_text(messages: Any, max_chars: int) -> str:
    # `messages` may be the count of messages instead of a transcript: no words then.
    if not isinstance(messages, list):
        return ""
    lines = (m.get("text") for m in messages
             if isinstance(m, dict) and m.get("from") == CUSTOMER)
    return _joined(lines, max_chars)


def _joined(parts: Any, max_chars: int) -> str:
    """The text parts, one per line, stopping once `max_chars` are taken."""
    taken: list[str] = []
    room = max_chars
    for part in parts:
        if not isinstance(part, str) or not part:
            continue
        if taken:
            room -= 1  # the newline between parts
            if room <= 0:
                break
        piece = part[:room]
        taken.append(piece)
        room -= len(piece)
        if room <= 0:
            break
    return "\n".join(taken)
