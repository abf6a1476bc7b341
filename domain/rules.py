"""Alert categories from a rules file the advisory group edits (no code changes).

A bottom-2-box survey (or the words behind a negative-interaction alert) is sorted
into `skill` (the agent's knowledge, attitude, process), `business_operations`
(price, policy, product, delivery, outage) or `customer_expectation` (the customer's
own expectation or mistake), or left `unclassified` for a person to decide when
resolving.  The rules live in a TOML file
(default: config/alert_rules.toml, whose header documents the format):

    actors = ["adv-ana", "supervisor-01"]      # who may acknowledge/resolve alerts

    [[rule]]
    name = "pricing"
    category = "business_operations"
    reason_codes = ["price", "price_increase"]  # any of these on the survey
    comment_phrases = ["too expensive"]         # any of these in the comment

Rules are tried top to bottom; the first whose conditions *all* match decides.
Within one condition any listed value matches.  Loading is strict: a typo in
a key or a wrong type is an error naming the file, rule and field, because a
misspelt condition that were silently ignored would quietly change who gets
called back.
"""

from __future__ import annotations

import re
import textwrap
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.config_checks import reject_unknown, string_list
from kernel.errors import ConfigError
from schemas.registry import load_schema

# The alert contract's categories (schemas/alert.v1.json), in its order.
CATEGORIES: tuple[str, ...] = tuple(load_schema("alert.v1")["properties"]["category"]["enum"])
UNCLASSIFIED = "unclassified"
DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "config" / "alert_rules.toml"

CONDITION_KEYS = (
    "reason_codes", "comment_phrases", "queues", "outcomes", "min_transfers", "contact_channels",
)
_RULE_KEYS = ("name", "category", "description", "enabled", *CONDITION_KEYS)
_TOP_KEYS = ("actors", "rule")

# Apostrophe look-alikes that phones and word processors put into comments;
# folded to ASCII so a curly "didn\u2019t listen" matches the phrase "didn't listen".
_APOSTROPHES = str.maketrans({c: "'" for c in "\u2018\u2019\u201b\u02bc\u2032\u00b4`"})
_WORDY = re.compile(r"\w")


class RulesError(ConfigError):
    """The rules file cannot be used; the message names file, rule and field."""


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    reason_codes: frozenset[str] = frozenset()
    comment_phrases: tuple[str, ...] = ()
    queues: frozenset[str] = frozenset()
    outcomes: frozenset[str] = frozenset()
    min_transfers: int | None = None
    contact_channels: frozenset[str] = frozenset()
    description: str = ""
    # Built at load: one pattern per phrase (to explain) and all of them in one
    # alternation (to reject a non-matching comment with a single search).
    phrase_patterns: tuple[re.Pattern[str], ...] = field(default=(), repr=False, compare=False)
    any_phrase: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    # Per phrase, text its every match contains (its longest run without "*"): a comment
    # without it cannot match, and `in` is far cheaper than the pattern's search.
    phrase_needles: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def match(self, facts: _Facts) -> tuple[str, ...] | None:
        """Why this rule matches (one reason per matched value), or None when it does not."""
        reasons: list[str] = []
        # Cheapest checks first; the phrase search runs only if the others agree.
        for check in _CHECKS:
            found = check(self, facts)
            if found is None:
                return None
            reasons.extend(found)
        return tuple(reasons)


@dataclass(frozen=True)
class Classification:
    category: str
    rule: str | None  # the deciding rule's name; None when nothing matched
    matched: tuple[str, ...]  # for people, e.g. ("reason code price", "comment contains 'bill'")


@dataclass(frozen=True)
class Rules:
    rules: tuple[Rule, ...]
    actors: frozenset[str]
    source: str

    def classify(self, survey_payload: dict, rated_contact: dict | None) -> Classification:
        """Category of a survey payload; `rated_contact` is the rated contact's payload or None."""
        facts = _Facts.of(survey_payload, rated_contact)
        for rule in self.rules:
            reasons = rule.match(facts)
            if reasons is not None:
                return Classification(rule.category, rule.name, reasons)
        return Classification(UNCLASSIFIED, None, ())

    def describe(self) -> str:
        """The rules in evaluation order, one block each (for `cxt rules check`)."""
        lines = [f"{self.source}: {len(self.rules)} rules, {len(self.actors)} actors"]
        for index, rule in enumerate(self.rules, start=1):
            lines.append(f"{index:>3}. {rule.name} -> {rule.category}")
            lines.extend(textwrap.fill(text, width=100, initial_indent=" " * 7,
                                       subsequent_indent=" " * 9, break_long_words=False)
                         for text in _conditions_text(rule))
        lines.append("actors: " + ", ".join(sorted(self.actors)))
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading


def load_rules(path: str | Path) -> Rules:
    """Read and check a rules file; RulesError says exactly what is wrong and where."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:  # ValueError: undecodable, or a NUL in the path
        raise RulesError(f"{source}: cannot read the rules file: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise RulesError(f"{source}: not valid TOML: {exc}") from None
    return _parse_document(document, source)


def normalise_text(text: str) -> str:
    """Text as phrases match it: one case, ASCII apostrophes, single spaces."""
    # str.split() rather than a regex: half the cost, on the worker's hot path.
    return " ".join(text.translate(_APOSTROPHES).casefold().split())


def _parse_document(document: dict[str, Any], source: str) -> Rules:
    reject_unknown(document, _TOP_KEYS, f"{source}: top level", RulesError)
    actors = string_list(document.get("actors"), f"{source}: actors", RulesError)
    raw_rules = document.get("rule", [])
    if not isinstance(raw_rules, list):
        raise RulesError(f"{source}: rule must be written as [[rule]] blocks")
    rules: list[Rule] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_rules, start=1):
        rule = _parse_rule(raw, f"{source}: rule {index}")
        if rule is None:  # enabled = false
            continue
        if rule.name in names:
            raise RulesError(f"{source}: rule {index} {rule.name!r}: name is used by an "
                             "earlier rule; names must be unique so alerts say which rule decided")
        names.add(rule.name)
        rules.append(rule)
    return Rules(rules=tuple(rules), actors=frozenset(actors), source=source)


def _parse_rule(raw: Any, where: str) -> Rule | None:
    if not isinstance(raw, dict):
        raise RulesError(f"{where}: must be a [[rule]] block")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RulesError(f"{where}: name is required and must be a non-empty text")
    where = f"{where} {name.strip()!r}"
    reject_unknown(raw, _RULE_KEYS, where, RulesError)
    category = raw.get("category")
    if category not in CATEGORIES:
        raise RulesError(f"{where}: category must be one of {', '.join(CATEGORIES)} "
                         f"(got {category!r})")
    enabled = raw.get("enabled", True)
    description = raw.get("description", "")
    if not isinstance(enabled, bool):
        raise RulesError(f"{where}: enabled must be true or false")
    if not isinstance(description, str):
        raise RulesError(f"{where}: description must be a text")
    if not any(key in raw for key in CONDITION_KEYS):
        raise RulesError(f"{where}: has no condition; give at least one of "
                         f"{', '.join(CONDITION_KEYS)}")
    rule = _build_rule(raw, name.strip(), category, description, where)
    return rule if enabled else None


def _build_rule(raw: dict, name: str, category: str, description: str, where: str) -> Rule:
    def values(key: str) -> list[str]:
        return string_list(raw.get(key), f"{where}: {key}", RulesError) if key in raw else []

    phrases = [_check_phrase(p, f"{where}: comment_phrases") for p in values("comment_phrases")]
    patterns, any_phrase = phrase_patterns(phrases)
    return Rule(
        name=name,
        category=category,
        reason_codes=_folded(values("reason_codes")),
        comment_phrases=tuple(phrases),
        queues=_folded(values("queues")),
        outcomes=_folded(values("outcomes")),
        min_transfers=_min_transfers(raw, where),
        contact_channels=_folded(values("contact_channels")),
        description=description,
        phrase_patterns=patterns,
        any_phrase=any_phrase,
        phrase_needles=tuple(max(p.split("*"), key=len) for p in phrases),
    )






def _min_transfers(raw: dict, where: str) -> int | None:
    if "min_transfers" not in raw:
        return None
    value = raw["min_transfers"]
    # bool is an int in Python, but `min_transfers = true` is a mistake, not 1.
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RulesError(f"{where}: min_transfers must be a whole number >= 0 (got {value!r})")
    return value


def _check_phrase(phrase: str, where: str) -> str:
    normal = normalise_text(phrase)
    if not _WORDY.search(normal.replace("*", "")):
        raise RulesError(f"{where} must contain letters or digits (got {phrase!r})")
    return normal


def _phrase_body(phrase: str) -> str:
    # '*' stands for any letters or digits: "bill*" is bill, bills, billing.
    return re.escape(phrase).replace(r"\*", r"\w*")


def _whole_words(body: str) -> str:
    """Only at word edges: "late" must not match "chocolate"."""
    return rf"(?<!\w)(?:{body})(?!\w)"


def phrase_patterns(phrases: Sequence[str]
                    ) -> tuple[tuple[re.Pattern[str], ...], re.Pattern[str] | None]:
    """Normalised phrases as `comment_phrases` match them: one whole-word pattern each
    (to explain) and one for any of them (to search once).  Also domain.signal_config's
    escalation phrases, so both files mean the same by a phrase."""
    return tuple(re.compile(_whole_words(_phrase_body(p))) for p in phrases), _any_of(phrases)


def _any_of(phrases: Sequence[str]) -> re.Pattern[str] | None:
    # One alternation inside one pair of edge checks is several times faster
    # than an alternation of separately edged phrases.
    if not phrases:
        return None
    return re.compile(_whole_words("|".join(_phrase_body(p) for p in phrases)))


def _folded(values: Iterable[str]) -> frozenset[str]:
    return frozenset(v.casefold() for v in values)


# --------------------------------------------------------------------------- matching


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the rules look at, normalised once per survey rather than once per rule."""

    reason_codes: tuple[str, ...]  # as given, for the explanation
    folded_codes: tuple[str, ...]
    contact_channel: str
    queues: tuple[str, ...]  # the survey's queue, then the contact's
    outcome: str
    transfers: int | None
    comment: str

    @classmethod
    def of(cls, survey: dict, contact: dict | None) -> _Facts:
        contact = contact if isinstance(contact, dict) else {}
        codes = survey.get("reason_codes")
        codes = tuple(c for c in codes if isinstance(c, str)) if isinstance(codes, list) else ()
        transfers = contact.get("transfers")
        comment = survey.get("comment")
        return cls(
            reason_codes=codes,
            folded_codes=tuple(_text(c) for c in codes),
            contact_channel=_text(survey.get("contact_channel")),
            queues=tuple(q for q in (_text(survey.get("queue")), _text(contact.get("queue"))) if q),
            outcome=_text(contact.get("outcome")),
            # bool is an int in Python; a `true` here is bad data, not one transfer.
            transfers=transfers if type(transfers) is int else None,
            comment=normalise_text(comment) if isinstance(comment, str) else "",
        )


def _text(value: Any) -> str:
    return value.strip().casefold() if isinstance(value, str) else ""


# Each check returns None (the condition fails), () (the rule has no such
# condition) or the reasons it matched.
Check = Callable[[Rule, _Facts], tuple[str, ...] | None]


def _check_codes(rule: Rule, facts: _Facts) -> tuple[str, ...] | None:
    if not rule.reason_codes:
        return ()
    found = tuple(f"reason code {code}" for code, folded in
                  zip(facts.reason_codes, facts.folded_codes, strict=True)
                  if folded in rule.reason_codes)
    return found or None


def _check_channels(rule: Rule, facts: _Facts) -> tuple[str, ...] | None:
    if not rule.contact_channels:
        return ()
    if facts.contact_channel in rule.contact_channels:
        return (f"contact channel {facts.contact_channel}",)
    return None


def _check_queues(rule: Rule, facts: _Facts) -> tuple[str, ...] | None:
    if not rule.queues:
        return ()
    # The survey tool and the switch may name it differently; either counts.
    for queue in facts.queues:
        if queue in rule.queues:
            return (f"queue {queue}",)
    return None


def _check_outcomes(rule: Rule, facts: _Facts) -> tuple[str, ...] | None:
    if not rule.outcomes:
        return ()
    return (f"contact outcome {facts.outcome}",) if facts.outcome in rule.outcomes else None


def _check_transfers(rule: Rule, facts: _Facts) -> tuple[str, ...] | None:
    if rule.min_transfers is None:
        return ()
    if facts.transfers is None or facts.transfers < rule.min_transfers:
        return None
    return (f"contact had {facts.transfers} transfers (>= {rule.min_transfers})",)


def _check_phrases(rule: Rule, facts: _Facts) -> tuple[str, ...] | None:
    if rule.any_phrase is None:
        return ()
    if not facts.comment or not rule.any_phrase.search(facts.comment):
        return None
    comment = facts.comment
    return tuple(f"comment contains {phrase!r}" for phrase, needle, pattern in
                 zip(rule.comment_phrases, rule.phrase_needles, rule.phrase_patterns,
                     strict=True)
                 if needle in comment and pattern.search(comment))


_CHECKS: tuple[Check, ...] = (
    _check_codes, _check_channels, _check_queues, _check_outcomes, _check_transfers,
    _check_phrases,
)


def _conditions_text(rule: Rule) -> list[str]:
    shown = {
        "reason_codes": ", ".join(sorted(rule.reason_codes)),
        "comment_phrases": ", ".join(repr(p) for p in rule.comment_phrases),
        "queues": ", ".join(sorted(rule.queues)),
        "outcomes": ", ".join(sorted(rule.outcomes)),
        "min_transfers": "" if rule.min_transfers is None else str(rule.min_transfers),
        "contact_channels": ", ".join(sorted(rule.contact_channels)),
    }
    return [f"{key}: {text}" for key, text in shown.items() if text]
