"""Which intents a timeline entry is about: the `[relevance.<intent>]` keywords of
config/agent_context.toml and the tests built on them (pure, no I/O but the file read).

One source of truth for the agent view (dashboard.context ranks a timeline with
`Matcher`, one intent per request) and the worker (store.timeline keeps, per customer
and intent, the newest relevant contacts, from `intents_of`: every configured intent
an entry is directly about, in one pass).  Both load the same file through the same
setting (CXT_AGENT_CONTEXT): the dashboard as part of the whole agent-context file
(dashboard.prompts), the worker's stores only its [relevance] section (`load_relevance`).

An entry is directly relevant to an intent when its payload's intent or a step of its
IVR path names the intent (trimmed, capitals ignored), or one of the intent's
keywords starts a word of its subject, comment, text or reason codes (codes are read
with spaces for underscores).  A survey is also relevant when the contact it rates is:
that needs the timeline, so it is the ranking's to decide (dashboard.context).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from domain.contacts import CONTACT_ID_FIELDS, normalise_intent
from kernel.config_checks import reject_unknown, string_list
from kernel.errors import ConfigError

# intent (trimmed, lower case) -> its keywords, in the file's order
Relevance = Mapping[str, tuple[str, ...]]
TEXT_FIELDS = ("subject", "comment", "text")


class RelevanceConfigError(ConfigError):
    """The [relevance] section cannot be used; the message names the file and intent."""


# --------------------------------------------------------------------------- loading


def load_relevance(path: Path) -> dict[str, tuple[str, ...]]:
    """The [relevance] section of the agent context file, checked as the dashboard checks
    it; the rest of the file is the dashboard's (dashboard.prompts) and not read here."""
    source = str(path)
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RelevanceConfigError(f"{source}: agent context file not found "
                                   "(set CXT_AGENT_CONTEXT to another path)") from None
    except (OSError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise RelevanceConfigError(f"{source}: cannot read the agent context file: "
                                   f"{exc}") from None
    return parse_relevance(document.get("relevance", {}), source)


def parse_relevance(raw: Any, source: str,
                    error: type[ValueError] = RelevanceConfigError
                    ) -> dict[str, tuple[str, ...]]:
    """`[relevance.<intent>] keywords = [...]` tables as intent -> keywords; `error` is
    the caller's class (the dashboard reports it as its own file's mistake)."""
    if not isinstance(raw, dict):
        raise error(f"{source}: relevance must be tables like [relevance.billing]")
    relevance: dict[str, tuple[str, ...]] = {}
    for intent, table in raw.items():
        where = f"{source}: relevance.{intent}"
        if not intent.strip():
            raise error(f"{where}: the intent name must not be empty")
        if not isinstance(table, dict):
            raise error(f"{where}: must be a table with keywords = [...]")
        reject_unknown(table, ("keywords",), where, error)
        if "keywords" not in table:
            raise error(f"{where}: keywords is required")
        key = intent.strip().casefold()
        if key in relevance:
            raise error(f"{where}: intent is listed twice (names ignore case)")
        relevance[key] = tuple(string_list(table["keywords"], f"{where}: keywords", error))
    return relevance


# --------------------------------------------------------------------------- patterns


def _bodies(keywords: tuple[str, ...]) -> list[str]:
    return [r"\s+".join(re.escape(word) for word in k.split()) for k in keywords if k.split()]


@lru_cache(maxsize=256)
def keyword_pattern(keywords: tuple[str, ...]) -> re.Pattern[str] | None:
    """One alternation for all of an intent's keywords, matching at the start of a word.

    A word start rather than a whole word so that "bill" also finds "billing"
    and "charge" finds "charged"; spaces inside a keyword match any white space.
    """
    bodies = _bodies(keywords)
    if not bodies:
        return None
    return re.compile(rf"(?<!\w)(?:{'|'.join(bodies)})", re.IGNORECASE)


class Matcher:
    """Relevance tests for one intent, with the folding of repeated values remembered.

    Timelines repeat a handful of intent and menu names thousands of times, so
    each distinct spelling is folded (trimmed, lower-cased) once per request.
    """

    __slots__ = ("folded", "intent", "pattern")

    def __init__(self, intent: str, relevance: Relevance) -> None:
        self.intent = intent
        self.pattern = keyword_pattern(tuple(relevance.get(intent, ())))
        self.folded: dict[str, str] = {}

    def _is_intent(self, value: Any) -> bool:
        if value.__class__ is not str:
            return False
        if value == self.intent:
            return True
        folded = self.folded.get(value)
        if folded is None:
            folded = self.folded[value] = value.strip().casefold()
        return folded == self.intent

    def directly(self, entry: Mapping[str, Any]) -> bool:
        payload: Any = entry.get("payload")  # any JSON: tested below
        if payload.__class__ is not dict:
            return False
        if self._is_intent(payload.get("intent")):
            return True
        path = payload.get("ivr_path")
        if path.__class__ is list:
            for step in path:
                if self._is_intent(step):
                    return True
        pattern = self.pattern
        if pattern is None:
            return False
        return any(pattern.search(text) for text in _texts(payload))


def _texts(payload: dict) -> list[str]:
    """The texts keywords are looked for in: subject, comment, text, then the reason
    codes read with spaces ("delivery_delay" is found by "delay")."""
    texts: list[str] = [t for field in TEXT_FIELDS if isinstance(t := payload.get(field), str)]
    codes: Any = payload.get("reason_codes")
    if codes.__class__ is list:
        texts += [code.replace("_", " ") for code in codes if code.__class__ is str]
    return texts


class _Combined:
    """What `intents_of` needs of one relevance mapping, made once: every configured
    intent's keywords in one pattern, each intent's own pattern to tell, at the rare
    position where the combined one matches, whose keyword it is, and the intent each
    spelling of an intent or menu name seen so far stands for."""

    __slots__ = ("any", "each", "order", "spellings")

    def __init__(self, relevance: Relevance) -> None:
        # One pattern finds where any keyword starts a word; which intents' keywords those
        # are is asked of each intent's pattern at that position, so overlapping keywords
        # of two intents ("deliver", "delivery") both count.
        self.any = _any_keyword([k for keywords in relevance.values() for k in keywords])
        self.each = [(intent, pattern) for intent, keywords in relevance.items()
                     if (pattern := keyword_pattern(tuple(keywords))) is not None]
        self.order = {intent: n for n, intent in enumerate(relevance)}
        # A timeline repeats a handful of intent and menu names: each spelling is folded
        # once per process ("" for one that is no configured intent).
        self.spellings: dict[str, str] = {}

    def intent_named(self, value: str) -> str:
        named = self.spellings.get(value)
        if named is None:
            if len(self.spellings) > 10_000:  # spellings from the outside: bounded
                self.spellings.clear()
            folded = normalise_intent(value)
            named = self.spellings[value] = folded if folded in self.order else ""
        return named


def _any_keyword(keywords: list[str]) -> re.Pattern[str] | None:
    """Word starts where one of `keywords` begins, as a trie of alternations ("bill",
    "billing", "bundle" -> b(?:ill(?:ing)?|undle)): at each position the engine tries
    one branch per first letter instead of every keyword (half the time of a flat
    alternation over the demo's texts).  Spaces inside a keyword match any white space."""
    trie: dict[str, dict] = {}
    for keyword in keywords:
        node = trie
        for ch in " ".join(keyword.split()):
            node = node.setdefault(ch, {})
        if node is not trie:
            node[""] = {}

    def branch(node: dict[str, dict]) -> str:
        alternatives = [(r"\s+" if ch == " " else re.escape(ch)) + branch(child)
                        for ch, child in sorted(node.items()) if ch]
        if not alternatives:
            return ""
        body = f"(?:{'|'.join(alternatives)})"
        return f"{body}?" if "" in node else body

    return re.compile(rf"(?<!\w){branch(trie)}", re.IGNORECASE) if trie else None


_COMBINED: dict[int, tuple[Relevance, _Combined]] = {}


def _combined(relevance: Relevance) -> _Combined:
    # Keyed by identity: a process holds one or two relevance mappings for its life.
    held = _COMBINED.get(id(relevance))
    if held is None or held[0] is not relevance:
        held = _COMBINED[id(relevance)] = (relevance, _Combined(relevance))
    return held[1]


def intents_of(entry: Mapping[str, Any], relevance: Relevance) -> tuple[str, ...]:
    """Every configured intent `entry` is directly relevant to, in the file's order (the
    same answer as `Matcher(intent, relevance).directly(entry)` for each intent), in one
    pass: the payload's intent and IVR path looked up, one combined pattern over the
    texts.  The worker asks it of every entry it stores (~3 us)."""
    payload: Any = entry.get("payload")
    if payload.__class__ is not dict or not relevance:
        return ()
    combined = _combined(relevance)
    found: set[str] = set()
    named = payload.get("intent")
    if named.__class__ is str and (intent := combined.intent_named(named)):
        found.add(intent)
    path = payload.get("ivr_path")
    if path.__class__ is list:
        for step in path:
            if step.__class__ is str and (intent := combined.intent_named(step)):
                found.add(intent)
    if combined.any is not None:
        for field in TEXT_FIELDS:
            text = payload.get(field)
            if text.__class__ is str:
                _keywords_in(text, combined, found)
        codes = payload.get("reason_codes")
        if codes.__class__ is list:
            for code in codes:
                if code.__class__ is str:
                    _keywords_in(code.replace("_", " "), combined, found)
    if len(found) < 2:
        return tuple(found)
    return tuple(sorted(found, key=combined.order.__getitem__))


def _keywords_in(text: str, combined: _Combined, found: set[str]) -> None:
    assert combined.any is not None
    search, at = combined.any.search, 0
    while (hit := search(text, at)) is not None:
        start = hit.start()
        left = [(i, p) for i, p in combined.each if i not in found]
        for intent, pattern in left:
            # match() at a position still sees the text before it: the word-start
            # look-behind holds as it does for a search.
            if pattern.match(text, start):
                found.add(intent)
        if all(i in found for i, _ in left):
            return
        at = start + 1  # a keyword of another intent may start inside this one


# --------------------------------------------------------------------------- contacts

# Channels whose entries of one contact (started, ended) the agent view shows as one
# item (dashboard.context.merge_contacts); e-mails of a thread stay apart: each
# message says something of its own.
ONE_ITEM_CHANNELS = frozenset({"call", "chat"})


# The payload field naming the contact of each of those channels (domain.contacts').
_ANCHOR_FIELDS = {channel: CONTACT_ID_FIELDS[channel] for channel in ONE_ITEM_CHANNELS}


def anchor_of(entry: Mapping[str, Any]) -> str | None:
    """What the worker's index of relevant contacts (store.timeline) names an entry by:
    its call or chat id for the entries the agent view merges into one item (its
    domain.contacts.contact_key), so a call's started and ended entries are one member,
    else its event_id."""
    field = _ANCHOR_FIELDS.get(entry.get("channel"))  # type: ignore[arg-type]
    payload: Any = entry.get("payload")
    if field is not None and payload.__class__ is dict:
        value = payload.get(field)
        if value.__class__ is str and value:
            return value
        if value.__class__ is int:  # not a bool: its class is bool
            return str(value)
    event_id = entry.get("event_id")
    return event_id if isinstance(event_id, str) and event_id else None
