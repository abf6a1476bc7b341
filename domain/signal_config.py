"""The negative-interaction signals' settings, from a file the advisory group edits.

config/signals.toml (or CXT_SIGNALS) has one table per kind of signal; its header
documents every key.  Loading is strict, like the alert rules (domain.rules): an
unknown key, a wrong type or a value out of range is an error naming the file,
the section and the key, because a threshold silently ignored would quietly
change which customers the advisory group calls.  A key left out takes the
default shown in the shipped file; a section left out takes all its defaults.
"""

from __future__ import annotations

import math
import re
import textwrap
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from domain.rules import normalise_text, phrase_patterns
from kernel.config_checks import reject_unknown, string_list
from kernel.errors import ConfigError

DEFAULT_SIGNALS_PATH = Path(__file__).resolve().parent.parent / "config" / "signals.toml"

_WORDY = re.compile(r"\w")


class SignalsError(ConfigError):
    """The signals file cannot be used; the message names file, section and key."""


@dataclass(frozen=True)
class SentimentSection:
    enabled: bool = True
    negative_at_or_below: float = -0.3
    positive_at_or_above: float = 0.3
    max_chars: int = 1000
    public_social_weight: float = 1.5
    use_source_sentiment: bool = True


@dataclass(frozen=True)
class EscalationSection:
    enabled: bool = True
    phrases: tuple[str, ...] = ()  # normalised as matched (normalise_text)
    # Longest phrase first, so "formal complaint" is reported rather than "complaint".
    any_phrase: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    # The first word of every phrase (`first_words`), or None when a phrase starts with
    # "*" (any word): a text without any of them cannot match, and most texts have none,
    # so the search (the costly part, on the worker's hot path) is skipped for them.
    anchors: Anchors | None = field(default=None, repr=False, compare=False)

    def said(self, text: str) -> str | None:
        """The listed words found in `text` (as written there, normalised), or None."""
        if self.any_phrase is None or not text:
            return None
        if self.anchors is not None and not self.anchors.any_in(text):
            return None
        found = self.any_phrase.search(normalise_text(text))
        return found.group(0) if found else None


_WORD_RUN = re.compile(r"\w+")


@dataclass(frozen=True)
class Anchors:
    """What a text must contain to match any phrase: all the whole words of one phrase
    (each phrase's runs of letters and digits; one before a `*` only as a prefix).  A
    phrase starting with such a prefix (`prefixes`) is searched for whenever a word
    starts with it."""

    words: frozenset[str]  # every phrase's first word (not a prefix)
    prefixes: tuple[str, ...]  # first words that end in `*`
    # First word -> the whole words of each phrase starting with it.
    needs: dict[str, tuple[frozenset[str], ...]] = field(default_factory=dict, compare=False)
    # Any first word as a whole word, or any prefix at a word's start: one search in C
    # that turns away the texts with none (nearly all) before they are split into words.
    gate: re.Pattern[str] | None = field(default=None, compare=False)

    @classmethod
    def of(cls, phrases: Sequence[str]) -> Anchors | None:
        prefixes: list[str] = []
        needs: dict[str, list[frozenset[str]]] = {}
        for phrase in phrases:
            first = _WORD_RUN.match(phrase)
            if first is None:  # starts with "*" or a sign: no word to look for
                return None
            if phrase[first.end():first.end() + 1] == "*":
                prefixes.append(first.group(0))
                continue
            whole = frozenset(m.group(0) for m in _WORD_RUN.finditer(phrase)
                              if phrase[m.end():m.end() + 1] != "*")
            needs.setdefault(first.group(0), []).append(whole)
        return cls(frozenset(needs), tuple(prefixes),
                   {word: tuple(sets) for word, sets in needs.items()},
                   _gate(sorted(needs, key=len, reverse=True), prefixes))

    def any_in(self, text: str) -> bool:
        # Apostrophes split words here as in the phrases ("won't": "won", "t"), whichever
        # apostrophe the text uses; casefold as normalise_text does.
        folded = text.casefold()
        if self.gate is not None and self.gate.search(folded) is None:
            return False
        tokens = _WORD_RUN.findall(folded)
        present = set(tokens)
        for word in self.words.intersection(present):
            if any(need <= present for need in self.needs[word]):
                return True
        return any(token.startswith(self.prefixes) for token in tokens) if self.prefixes \
            else False


def _gate(words: Sequence[str], prefixes: Sequence[str]) -> re.Pattern[str] | None:
    """A pattern found in every text where `Anchors.any_in` can be true: a word (a run of
    \\w, as `_WORD_RUN` splits them) equal to one of `words` or starting with a prefix."""
    parts: list[str] = []
    if words:
        parts.append(rf"(?:{'|'.join(map(re.escape, words))})(?!\w)")
    if prefixes:
        parts.append(f"(?:{'|'.join(map(re.escape, prefixes))})")
    return re.compile(rf"(?<!\w)(?:{'|'.join(parts)})") if parts else None


@dataclass(frozen=True)
class RepeatSection:
    enabled: bool = True
    contacts: int = 3
    within_days: int = 7


@dataclass(frozen=True)
class OperationalSection:
    enabled: bool = True
    min_transfers: int = 3
    wait_over_seconds: int = 600
    abandoned_followup_minutes: int = 60


@dataclass(frozen=True)
class SignalConfig:
    sentiment: SentimentSection = SentimentSection()
    escalation: EscalationSection = EscalationSection()
    repeat_contact: RepeatSection = RepeatSection()
    operational: OperationalSection = OperationalSection()
    source: str = "(defaults)"

    def describe(self) -> str:
        """Each signal, on or off, with its thresholds (for `cxt rules check`)."""
        s, e, r, o = self.sentiment, self.escalation, self.repeat_contact, self.operational
        source_score = ("the source's own score when it sends one" if s.use_source_sentiment
                        else "never the source's own score")
        rows = [
            ("negative_sentiment", s.enabled,
             f"score <= {s.negative_at_or_below:g} "
             f"(public social posts x{s.public_social_weight:g}); "
             f"label positive at >= {s.positive_at_or_above:g}; first {s.max_chars} characters; "
             f"{source_score}"),
            ("escalation_language", e.enabled and bool(e.phrases),
             f"{len(e.phrases)} phrases: " + ", ".join(repr(p) for p in e.phrases)),
            ("repeat_contact", r.enabled,
             f"contact number {r.contacts} or more about one intent within {r.within_days} days"),
            ("many_transfers", o.enabled, f"a call transferred {o.min_transfers} or more times"),
            ("long_wait", o.enabled, f"a call or chat waited more than {o.wait_over_seconds} s"),
            ("abandoned_then_contact", o.enabled,
             f"a contact within {o.abandoned_followup_minutes} minutes of an abandoned call"),
        ]
        on = sum(enabled for _, enabled, _ in rows)
        lines = [f"{self.source}: {len(rows)} signals, {on} on"]
        for name, enabled, text in rows:
            lines.append(f"  {name:<23}{'on' if enabled else 'off'}")
            lines.append(textwrap.fill(text, width=100, initial_indent=" " * 6,
                                       subsequent_indent=" " * 8, break_long_words=False,
                                       break_on_hyphens=False))
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading

_SECTIONS: dict[str, type] = {
    "sentiment": SentimentSection,
    "escalation": EscalationSection,
    "repeat_contact": RepeatSection,
    "operational": OperationalSection,
}


# Fields built from the file, not written in it.
_BUILT = ("any_phrase", "anchors")


def load_signals(path: str | Path = DEFAULT_SIGNALS_PATH) -> SignalConfig:
    """Read and check a signals file; SignalsError says exactly what is wrong and where."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: undecodable, or a NUL in the path
        raise SignalsError(f"{source}: cannot read the signals file: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise SignalsError(f"{source}: not valid TOML: {exc}") from None
    return parse_signals(document, source)


def parse_signals(document: Mapping[str, Any], source: str) -> SignalConfig:
    reject_unknown(document, tuple(_SECTIONS), f"{source}: top level", SignalsError)
    tables: dict[str, Mapping[str, Any]] = {}
    for name in _SECTIONS:
        table = document.get(name, {})
        if not isinstance(table, dict):
            raise SignalsError(f"{source}: {name} must be a section, written [{name}]")
        keys = tuple(f.name for f in fields(_SECTIONS[name]) if f.name not in _BUILT)
        reject_unknown(table, keys, f"{source}: [{name}]", SignalsError)
        tables[name] = table
    return SignalConfig(
        sentiment=_sentiment(tables["sentiment"], f"{source}: [sentiment]"),
        escalation=_escalation(tables["escalation"], f"{source}: [escalation]"),
        repeat_contact=RepeatSection(
            enabled=_flag(tables["repeat_contact"], "enabled", True, f"{source}: [repeat_contact]"),
            contacts=_whole(tables["repeat_contact"], "contacts", 3, 2, 100,
                            f"{source}: [repeat_contact]"),
            within_days=_whole(tables["repeat_contact"], "within_days", 7, 1, 400,
                               f"{source}: [repeat_contact]")),
        operational=_operational(tables["operational"], f"{source}: [operational]"),
        source=source,
    )


def _sentiment(table: Mapping[str, Any], where: str) -> SentimentSection:
    d = SentimentSection()
    negative = _number(table, "negative_at_or_below", d.negative_at_or_below, -1, 1, where)
    positive = _number(table, "positive_at_or_above", d.positive_at_or_above, -1, 1, where)
    if negative >= positive:
        raise SignalsError(f"{where}: negative_at_or_below ({negative:g}) must be below "
                           f"positive_at_or_above ({positive:g})")
    return SentimentSection(
        enabled=_flag(table, "enabled", d.enabled, where),
        negative_at_or_below=negative,
        positive_at_or_above=positive,
        max_chars=_whole(table, "max_chars", d.max_chars, 20, 100_000, where),
        # Below 1 a public post would weigh less than a private chat: the opposite of why.
        public_social_weight=_number(table, "public_social_weight", d.public_social_weight,
                                     1, 10, where),
        use_source_sentiment=_flag(table, "use_source_sentiment", d.use_source_sentiment, where),
    )


def _escalation(table: Mapping[str, Any], where: str) -> EscalationSection:
    enabled = _flag(table, "enabled", True, where)
    if "phrases" not in table:
        if enabled:
            raise SignalsError(f"{where}: phrases is required while enabled = true: a list of "
                               "words or phrases, like [\"complaint\", \"ombudsman\"]")
        return EscalationSection(enabled=False)
    phrases: list[str] = []
    for phrase in string_list(table["phrases"], f"{where}: phrases", SignalsError):
        normal = normalise_text(phrase)
        if not _WORDY.search(normal.replace("*", "")):
            raise SignalsError(f"{where}: phrases must contain letters or digits (got {phrase!r})")
        if normal in phrases:
            raise SignalsError(f"{where}: phrases lists {phrase!r} twice")
        phrases.append(normal)
    longest_first = sorted(phrases, key=len, reverse=True)
    return EscalationSection(enabled=enabled, phrases=tuple(phrases),
                             any_phrase=phrase_patterns(longest_first)[1],
                             anchors=Anchors.of(phrases))


def _operational(table: Mapping[str, Any], where: str) -> OperationalSection:
    d = OperationalSection()
    return OperationalSection(
        enabled=_flag(table, "enabled", d.enabled, where),
        min_transfers=_whole(table, "min_transfers", d.min_transfers, 1, 100, where),
        wait_over_seconds=_whole(table, "wait_over_seconds", d.wait_over_seconds, 1, 86_400,
                                 where),
        abandoned_followup_minutes=_whole(table, "abandoned_followup_minutes",
                                          d.abandoned_followup_minutes, 1, 10_080, where),
    )


def _flag(table: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise SignalsError(f"{where}: {key} must be true or false (got {value!r})")
    return value


def _whole(table: Mapping[str, Any], key: str, default: int, low: int, high: int,
           where: str) -> int:
    value = table.get(key, default)
    # bool is an int in Python, but `contacts = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SignalsError(f"{where}: {key} must be a whole number from {low} to {high} "
                           f"(got {value!r})")
    return value


def _number(table: Mapping[str, Any], key: str, default: float, low: float, high: float,
            where: str) -> float:
    value = table.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, int | float)
            or not math.isfinite(value) or not low <= value <= high):
        raise SignalsError(f"{where}: {key} must be a number from {low:g} to {high:g} "
                           f"(got {value!r})")
    return float(value)
