"""Next-best-action prompts of the agent view, and the file that configures them (pure).

The contact-centre team edits `config/agent_context.toml` (its header documents
the format): relevance keywords per intent (`domain.relevance`, which the
worker reads too) that `dashboard.context` ranks with, and
`[[prompt]]` rules, evaluated here against the customer record and timeline
when a contact reaches an agent:

    [[prompt]]
    id = "recent-bottom-2-box"        # unique; the agent view says which rule spoke
    when = "recent_bottom_2_box"      # recent_bottom_2_box | repeat_contact |
                                      # customer_attribute | preference
    within_days = 30
    priority = 1                      # lower first; default 100
    tone = "alert"                    # alert | info | offer: how the page shows it
    message = "Acknowledge the bad experience first: they rated a {contact_channel} ..."

Loading is strict, like the alert rules: a misspelt key, a wrong type, a
duplicate id or a placeholder the rule cannot fill is an error naming the file,
rule and field, raised when the service starts rather than the first time an
agent takes a matching contact.  Evaluation never raises: entries with missing
or unparseable fields are skipped, and a rule whose message needs a value the
data does not have (say `{plan}` for a customer without a plan) stays silent
instead of showing the agent half a sentence.  A value is missing when the data
has none (None); `message` may list templates, and the first one whose every
placeholder has a value is shown.

The customer's own preferences (cx.self-service.v1) are obeyed here too: a rule
of `when = "preference"` speaks when the customer set that preference (their
preferred channel, language, accessibility needs), and with "no sales offers" set
every prompt of tone "offer" is held back: `decide_prompts` says which and why, so
the agent page can show that an offer was withheld rather than silently missing.

The same file's `[fields.<name>]` tables say how the agent view labels and
formats the customer record's fields (`CustomerField`, `display_fields`).
"""

from __future__ import annotations

import dataclasses
import difflib
import string
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

from domain.contacts import contact_key, normalise_intent, parse_ms
from domain.relevance import parse_relevance
from domain.surveys import is_bottom_2_box
from kernel.config_checks import reject_unknown, string_list
from kernel.errors import ConfigError
from kernel.times import parse_rfc3339
from schemas.validate import survey_scale

RECENT_BOTTOM_2_BOX = "recent_bottom_2_box"
REPEAT_CONTACT = "repeat_contact"
CUSTOMER_ATTRIBUTE = "customer_attribute"
PREFERENCE = "preference"
WHENS = (RECENT_BOTTOM_2_BOX, REPEAT_CONTACT, CUSTOMER_ATTRIBUTE, PREFERENCE)
# The preferences (schemas/self-service.v1.json) a `when = "preference"` rule may name:
# those an agent acts on during the contact.
PREFERENCES = ("preferred_channel", "language", "accessibility_needs")
OFFER_TONE = "offer"  # what "no sales offers" holds back
COMPARATORS = ("equals", "in", "below", "above")
DEFAULT_PRIORITY = 100
DAY_MS = 86_400_000

_COMMON_KEYS = ("id", "when", "message", "priority", "tone", "intents", "description",
                "enabled")
# How the agent page shows a prompt: a warning, a piece of advice, or a sales offer
# (an offer must never look like an alarm).
TONES = ("alert", "info", "offer")
DEFAULT_TONE = "info"
_WHEN_KEYS: dict[str, tuple[str, ...]] = {
    RECENT_BOTTOM_2_BOX: ("within_days",),
    REPEAT_CONTACT: ("min_contacts", "within_days"),
    CUSTOMER_ATTRIBUTE: ("attribute", *COMPARATORS),
    PREFERENCE: ("preference", "except_values"),
}
_TOP_KEYS = ("relevance", "prompt", "fields", "at_risk")
# [at_risk] within_days: how far back a negative contact still shows the agent page's
# "at risk" banner (dashboard.at_risk); a week-old bad chat is history, not the mood.
AT_RISK_DAYS = 3
_AT_RISK_KEYS = ("within_days",)

# Placeholders every message may use (from the customer record and the contact),
# then those of each kind of rule.  Values come with realistic types so that a
# format spec such as {score:d} is checked at load time too.
COMMON_PLACEHOLDERS: dict[str, Any] = {
    "customer_id": "C-000001", "name": "Ada Lovelace", "first_name": "Ada", "plan": "plus",
    "segment": "vip", "region": "london", "intent": "billing",
}
WHEN_PLACEHOLDERS: dict[str, dict[str, Any]] = {
    RECENT_BOTTOM_2_BOX: {
        "score": 1, "scale_min": 1, "scale_max": 5, "contact_channel": "call",
        "date": "2026-11-22", "days_ago": 3, "ago": "3 days ago", "comment": "agent was rude",
        "comment_part": ' and said "agent was rude"',
    },
    REPEAT_CONTACT: {"count": 3, "days": 7},
    CUSTOMER_ATTRIBUTE: {"attribute": "plan_usage_pct", "value": 25},
    PREFERENCE: {"preference": "language", "value": "pl", "value_text": "Polish"},
}
# {value_text} of a preferred channel: how an agent says it to the customer.
CHANNEL_WORDS = {"call": "a phone call", "chat": "chat", "email": "e-mail",
                 "sms": "a text message (SMS)"}
# {value_text} of a language: its English name.  The languages most asked for in UK
# and European contact centres; any other tag is shown as written.
LANGUAGE_NAMES = {
    "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "cs": "Czech", "cy": "Welsh",
    "de": "German", "el": "Greek", "en": "English", "es": "Spanish", "fa": "Persian",
    "fr": "French", "ga": "Irish", "gd": "Scottish Gaelic", "gu": "Gujarati", "hi": "Hindi",
    "hu": "Hungarian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "ku": "Kurdish",
    "lt": "Lithuanian", "lv": "Latvian", "nl": "Dutch", "pa": "Punjabi", "pl": "Polish",
    "ps": "Pashto", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sk": "Slovak",
    "so": "Somali", "sq": "Albanian", "ta": "Tamil", "ti": "Tigrinya", "tr": "Turkish",
    "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}
_COMMENT_CHARS = 140  # longer comments are cut in {comment_part}; the timeline has them whole
_CUSTOMER_FIELDS = ("customer_id", "name", "plan", "segment", "region")

Scalar = str | int | float | bool


class AgentConfigError(ConfigError):
    """The agent context file cannot be used; the message names file, rule and field."""


@dataclass(frozen=True)
class PromptRule:
    id: str
    when: str
    messages: tuple[str, ...]  # tried in order: the first that can be filled is shown
    priority: int = DEFAULT_PRIORITY
    tone: str = DEFAULT_TONE
    intents: frozenset[str] = frozenset()  # empty: any intent, or none
    within_days: int | None = None
    min_contacts: int | None = None
    attribute: str | None = None
    comparator: str | None = None  # one of COMPARATORS
    operand: Scalar | tuple[Scalar, ...] | None = None
    preference: str | None = None  # one of PREFERENCES
    except_values: tuple[str, ...] = ()  # values the rule stays silent for ("en" covers "en-GB")
    description: str = ""

    @property
    def message(self) -> str:
        return self.messages[0]


@dataclass(frozen=True)
class CustomerField:
    """How the agent view shows one field of the customer record."""

    label: str
    format: str = "text"  # one of FIELD_FORMATS
    unit: str = ""  # money: the currency sign before; number: after, with a space
    decimals: int | None = None  # None: as the CRM sent it (money: 2)


@dataclass(frozen=True)
class AgentConfig:
    relevance: dict[str, tuple[str, ...]]  # intent (lower case) -> keywords
    prompts: tuple[PromptRule, ...]
    source: str = ""
    fields: dict[str, CustomerField] = dataclasses.field(default_factory=dict)  # by record field
    at_risk_days: int = AT_RISK_DAYS


# --------------------------------------------------------------------------- loading


def load_agent_config(path: Path) -> AgentConfig:
    """Read and check the agent context file; AgentConfigError says what is wrong and where."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AgentConfigError(f"{source}: agent context file not found "
                               "(set CXT_AGENT_CONTEXT to another path)") from None
    except (OSError, ValueError) as exc:  # ValueError: undecodable, or a NUL in the path
        raise AgentConfigError(f"{source}: cannot read the agent context file: {exc}") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # its message carries line and column
        raise AgentConfigError(f"{source}: not valid TOML: {exc}") from None
    return parse_agent_config(document, source)


def parse_agent_config(document: Mapping[str, Any], source: str) -> AgentConfig:
    """The checked configuration from an already parsed TOML document."""
    reject_unknown(document, _TOP_KEYS, f"{source}: top level", AgentConfigError)
    relevance = parse_relevance(document.get("relevance", {}), source, AgentConfigError)
    raw_rules = document.get("prompt", [])
    if not isinstance(raw_rules, list):
        raise AgentConfigError(f"{source}: prompt must be written as [[prompt]] blocks")
    rules: list[PromptRule] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(raw_rules, start=1):
        rule = _parse_rule(raw, f"{source}: prompt {index}")
        if rule is None:  # enabled = false
            continue
        if rule.id in seen:
            raise AgentConfigError(
                f"{source}: prompt {index} {rule.id!r}: id is already used by prompt "
                f"{seen[rule.id]}; ids must be unique so the agent view says which rule spoke")
        seen[rule.id] = index
        rules.append(rule)
    fields = parse_fields(document.get("fields", {}), source)
    return AgentConfig(relevance=relevance, prompts=tuple(rules), source=source, fields=fields,
                       at_risk_days=_parse_at_risk(document.get("at_risk", {}), source))


def _parse_at_risk(raw: Any, source: str) -> int:
    """`[at_risk] within_days = 3`: the days a negative contact keeps the banner up."""
    where = f"{source}: at_risk"
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{where}: must be a table like [at_risk] with within_days = 3")
    reject_unknown(raw, _AT_RISK_KEYS, where, AgentConfigError)
    days = raw.get("within_days", AT_RISK_DAYS)
    if not _is_int(days) or not 1 <= days <= 90:
        raise AgentConfigError(f"{where}: within_days must be a whole number of days from 1 "
                               f"to 90 (got {days!r})")
    return days


def _parse_rule(raw: Any, where: str) -> PromptRule | None:
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{where}: must be a [[prompt]] block")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id.strip():
        raise AgentConfigError(f"{where}: id is required and must be a non-empty text")
    rule_id = rule_id.strip()
    where = f"{where} {rule_id!r}"
    when = raw.get("when")
    if when is None:
        raise AgentConfigError(f"{where}: when is required (one of {', '.join(WHENS)})")
    if when not in WHENS:
        close = difflib.get_close_matches(str(when), WHENS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AgentConfigError(f"{where}: when must be one of {', '.join(WHENS)} "
                               f"(got {when!r}){hint}")
    reject_unknown(raw, (*_COMMON_KEYS, *_WHEN_KEYS[when]), where, AgentConfigError)
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise AgentConfigError(f"{where}: enabled must be true or false (got {enabled!r})")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise AgentConfigError(f"{where}: description must be a text")
    priority = raw.get("priority", DEFAULT_PRIORITY)
    if not _is_int(priority):
        raise AgentConfigError(f"{where}: priority must be a whole number (got {priority!r})")
    tone = raw.get("tone", DEFAULT_TONE)
    if tone not in TONES:
        close = difflib.get_close_matches(str(tone), TONES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AgentConfigError(f"{where}: tone must be one of {', '.join(TONES)} "
                               f"(got {tone!r}){hint}")
    intents: frozenset[str] = frozenset()
    if "intents" in raw:
        listed = string_list(raw["intents"], f"{where}: intents", AgentConfigError)
        intents = frozenset(i.casefold() for i in listed)
    fields: dict[str, Any] = {}
    if when in (RECENT_BOTTOM_2_BOX, REPEAT_CONTACT):
        fields["within_days"] = _whole(raw, "within_days", 1, where)
    if when == REPEAT_CONTACT:
        # One contact is the one the agent is taking now: never a repeat.
        fields["min_contacts"] = _whole(raw, "min_contacts", 2, where)
    if when == CUSTOMER_ATTRIBUTE:
        fields.update(_parse_attribute(raw, where))
    if when == PREFERENCE:
        fields["preference"] = _parse_preference(raw, where)
        if "except_values" in raw:
            fields["except_values"] = tuple(v.strip().casefold() for v in string_list(
                raw["except_values"], f"{where}: except_values", AgentConfigError))
    messages = _messages(raw.get("message"), where)
    for message in messages:
        _check_template(message, when, fields.get("operand"), where)
    if not enabled:
        return None
    return PromptRule(id=rule_id, when=when, messages=messages, priority=priority, tone=tone,
                      intents=intents, description=description, **fields)


def _messages(raw: Any, where: str) -> tuple[str, ...]:
    """One template, or a list of them (a fuller one first, then one needing less data)."""
    listed = raw if isinstance(raw, list) and raw else [raw]
    if not all(isinstance(m, str) and m.strip() for m in listed):
        raise AgentConfigError(f"{where}: message is required and must be a non-empty text, "
                               "or a list of them (the first that can be filled is shown)")
    return tuple(listed)


def _parse_attribute(raw: dict, where: str) -> dict[str, Any]:
    attribute = raw.get("attribute")
    if not isinstance(attribute, str) or not attribute.strip():
        raise AgentConfigError(f"{where}: attribute is required and must name a field of the "
                               "customer record, like \"segment\"")
    given = [c for c in COMPARATORS if c in raw]
    if not given:
        raise AgentConfigError(f"{where}: needs one comparison: {', '.join(COMPARATORS)}")
    if len(given) > 1:
        raise AgentConfigError(f"{where}: has {' and '.join(given)}; give exactly one of "
                               f"{', '.join(COMPARATORS)}")
    comparator = given[0]
    value = raw[comparator]
    operand: Scalar | tuple[Scalar, ...]
    if comparator in ("below", "above"):
        if not _is_number(value):
            raise AgentConfigError(f"{where}: {comparator} must be a number (got {value!r})")
        operand = value
    elif comparator == "equals":
        if not isinstance(value, Scalar):
            raise AgentConfigError(f"{where}: equals must be a text, number or true/false "
                                   f"(got {value!r})")
        operand = value
    else:
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, Scalar) for v in value)):
            raise AgentConfigError(f"{where}: in must be a list of at least one text, number "
                                   f"or true/false, like [\"gold\", \"vip\"] (got {value!r})")
        operand = tuple(value)
    return {"attribute": attribute.strip(), "comparator": comparator, "operand": operand}


def _parse_preference(raw: dict, where: str) -> str:
    name = raw.get("preference")
    if name not in PREFERENCES:
        close = difflib.get_close_matches(str(name), PREFERENCES, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AgentConfigError(f"{where}: preference must be one of {', '.join(PREFERENCES)} "
                               f"(got {name!r}){hint}")
    return name


def _check_template(message: str, when: str, operand: Any, where: str) -> None:
    allowed = {**COMMON_PLACEHOLDERS, **WHEN_PLACEHOLDERS[when]}
    if when == CUSTOMER_ATTRIBUTE:  # {value} looks like what the rule compares with
        allowed["value"] = operand[0] if isinstance(operand, tuple) else operand
    names = ", ".join(sorted(allowed))
    try:
        parts = list(string.Formatter().parse(message))
    except ValueError as exc:
        raise AgentConfigError(f"{where}: message is not a valid template ({exc}); "
                               "write a literal brace as {{ or }}") from None
    for _, field, _, _ in parts:
        if field is None:
            continue
        if not field.isidentifier():
            raise AgentConfigError(
                f"{where}: message placeholder {{{field}}} must be one plain name "
                f"(allowed for when = {when!r}: {names})")
        if field not in allowed:
            close = difflib.get_close_matches(field, allowed, n=1)
            hint = f"; did you mean {{{close[0]}}}?" if close else ""
            raise AgentConfigError(f"{where}: message has unknown placeholder {{{field}}} "
                                   f"(allowed for when = {when!r}: {names}){hint}")
    try:
        message.format_map(allowed)
    except KeyError as exc:  # a name inside a format spec, like {score:{width}}
        raise AgentConfigError(f"{where}: message has unknown placeholder {{{exc.args[0]}}} "
                               f"(allowed for when = {when!r}: {names})") from None
    except (ValueError, TypeError, IndexError) as exc:
        raise AgentConfigError(f"{where}: message is not a valid template: {exc}") from None






# --------------------------------------------------------------------------- record fields

FIELD_FORMATS = ("text", "number", "percent", "money", "yes_no", "date")
_FIELD_KEYS = ("label", "format", "unit", "decimals")
# Shown elsewhere on the card (the name as its title, identifiers masked), never as a field.
NOT_FIELDS = ("customer_id", "name", "identifiers")


def parse_fields(raw: Any, source: str) -> dict[str, CustomerField]:
    """`[fields.<name>]` tables: label = "Plan usage", format = "percent", ..."""
    if not isinstance(raw, dict):
        raise AgentConfigError(f"{source}: fields must be tables like [fields.plan_usage_pct]")
    return {name: _parse_field(table, f"{source}: fields.{name}")
            for name, table in raw.items()}


def _parse_field(table: Any, where: str) -> CustomerField:
    if where.rsplit(".", 1)[-1] in NOT_FIELDS:
        raise AgentConfigError(f"{where}: this part of the record is shown on its own "
                               "(the name as the card's title, identifiers masked); "
                               "remove the table")
    if not isinstance(table, dict):
        raise AgentConfigError(f"{where}: must be a table with label = \"...\"")
    reject_unknown(table, _FIELD_KEYS, where, AgentConfigError)
    label = table.get("label")
    if not isinstance(label, str) or not label.strip():
        raise AgentConfigError(f"{where}: label is required and must be a non-empty text")
    form = table.get("format", "text")
    if form not in FIELD_FORMATS:
        close = difflib.get_close_matches(str(form), FIELD_FORMATS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise AgentConfigError(f"{where}: format must be one of {', '.join(FIELD_FORMATS)} "
                               f"(got {form!r}){hint}")
    unit = table.get("unit", "")
    if not isinstance(unit, str):
        raise AgentConfigError(f"{where}: unit must be a text, like \"£\" or \"months\"")
    if unit and form not in ("money", "number"):
        raise AgentConfigError(f"{where}: unit is for format = \"money\" (the currency sign) "
                               f"or \"number\" (written after it), not {form!r}")
    if form == "money" and not unit.strip():
        raise AgentConfigError(f"{where}: format = \"money\" needs unit, the currency sign "
                               "written before the amount, like \"£\"")
    decimals = table.get("decimals")
    if decimals is not None and (not _is_int(decimals) or not 0 <= decimals <= 6):
        raise AgentConfigError(f"{where}: decimals must be a whole number from 0 to 6 "
                               f"(got {decimals!r})")
    if decimals is not None and form not in ("money", "number", "percent"):
        raise AgentConfigError(f"{where}: decimals is for format = \"money\", \"number\" "
                               f"or \"percent\", not {form!r}")
    return CustomerField(label=label.strip(), format=form, unit=unit.strip(), decimals=decimals)


def _whole(raw: dict, key: str, minimum: int, where: str) -> int:
    if key not in raw:
        raise AgentConfigError(f"{where}: {key} is required for when = {raw['when']!r}")
    value = raw[key]
    if not _is_int(value) or value < minimum:
        raise AgentConfigError(f"{where}: {key} must be a whole number >= {minimum} "
                               f"(got {value!r})")
    return value


def _is_int(value: Any) -> TypeGuard[int]:
    # bool is an int in Python, but `priority = true` is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# --------------------------------------------------------------------------- evaluation


def resolve_intent(intent: str | None, contact: dict | None) -> str | None:
    """The intent asked for, else the triggering contact's; lower case, None when unknown."""
    chosen = normalise_intent(intent)
    if chosen is None and isinstance(contact, dict):
        payload = contact.get("payload")
        if isinstance(payload, dict):
            chosen = normalise_intent(payload.get("intent"))
    return chosen


@dataclass(frozen=True, slots=True)
class PromptDecision:
    """The prompts to show, and those that would have spoken but the customer's
    preferences hold back (`{"rule", "tone", "priority", "reason"}`), each by priority."""

    shown: list[dict]
    held_back: list[dict]


def evaluate_prompts(
    config: AgentConfig,
    *,
    customer: dict | None,
    entries: list[dict],
    intent: str | None,
    contact: dict | None,
    now_ms: int,
    preferences: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Prompts for the agent, `[{"rule", "message", "priority", "tone"}]`, by priority
    then id (`decide_prompts` without the held-back list)."""
    return decide_prompts(config, customer=customer, entries=entries, intent=intent,
                          contact=contact, now_ms=now_ms, preferences=preferences).shown


def decide_prompts(
    config: AgentConfig,
    *,
    customer: dict | None,
    entries: list[dict],
    intent: str | None,
    contact: dict | None,
    now_ms: int,
    preferences: Mapping[str, Any] | None = None,
) -> PromptDecision:
    """The prompts whose condition holds, split into shown and held back.

    `entries` is the customer's timeline, newest first; `contact` is the contact
    being taken (it may be in `entries` too), `intent` its intent if known;
    `preferences` the customer's own (cx.self-service.v1), None when they set none.
    """
    intent = resolve_intent(intent, contact)
    customer = customer if isinstance(customer, dict) else None
    preferences = preferences if isinstance(preferences, Mapping) else None
    no_offers = preferences is not None and preferences.get("no_sales_offers") is True
    common = _common_values(customer, intent)
    shown: list[dict] = []
    held_back: list[dict] = []
    for rule in config.prompts:
        if rule.intents and intent not in rule.intents:
            continue
        values = _rule_values(rule, customer=customer, entries=entries, intent=intent,
                              contact=contact, now_ms=now_ms, preferences=preferences)
        if values is None:
            continue
        message = fill(rule.messages, {**common, **values})
        if message is None:
            continue
        if no_offers and rule.tone == OFFER_TONE:
            held_back.append({"rule": rule.id, "tone": rule.tone, "priority": rule.priority,
                              "reason": _no_offers_reason(preferences)})
            continue
        shown.append({"rule": rule.id, "message": message, "priority": rule.priority,
                      "tone": rule.tone})
    shown.sort(key=lambda p: (p["priority"], p["rule"]))
    held_back.sort(key=lambda p: (p["priority"], p["rule"]))
    return PromptDecision(shown, held_back)


def _no_offers_reason(preferences: Mapping[str, Any] | None) -> str:
    set_at = preferences.get("set_at") if preferences is not None else None
    when = f" (preferences set {set_at[:10]})" if isinstance(set_at, str) and set_at else ""
    return f"The customer asked for no sales offers{when}: sales and retention offers are " \
           "not shown."


def fill(templates: Iterable[str], values: Mapping[str, Any]) -> str | None:
    """The first template whose every placeholder has a value; None when none has.

    A value of None is missing data: it is left out here, in one place, so a
    rule never needs to invent a stand-in word that would read as half a sentence.
    """
    present = {key: value for key, value in values.items() if value is not None}
    for template in templates:
        try:
            return template.format_map(present)
        except (KeyError, ValueError, TypeError, IndexError):
            # A placeholder without a value here, or a format spec that does
            # not suit this record's value (say {value:.0f} on a text).
            continue
    return None


def _rule_values(rule: PromptRule, *, customer: dict | None, entries: list[dict],
                 intent: str | None, contact: dict | None, now_ms: int,
                 preferences: Mapping[str, Any] | None) -> dict | None:
    if rule.when == RECENT_BOTTOM_2_BOX:
        return _recent_bottom_2_box(rule, entries, now_ms)
    if rule.when == REPEAT_CONTACT:
        return _repeat_contact(rule, entries, intent, contact, now_ms)
    if rule.when == PREFERENCE:
        return _preference(rule, preferences)
    return _customer_attribute(rule, customer)


def _preference(rule: PromptRule, preferences: Mapping[str, Any] | None) -> dict | None:
    """{preference}, {value} and {value_text} of a preference the customer set; None
    (the rule is silent) when they did not."""
    if preferences is None or rule.preference is None:
        return None
    value = preferences.get(rule.preference)
    if not isinstance(value, str) or not value.strip():
        return None
    value = " ".join(value.split())
    folded = value.casefold()
    if any(folded == v or folded.startswith(f"{v}-") for v in rule.except_values):
        return None
    if rule.preference == "preferred_channel":
        text = CHANNEL_WORDS.get(value, value)
    elif rule.preference == "language":
        text = language_name(value)
    else:
        text = value
    return {"preference": rule.preference, "value": value, "value_text": text}


def language_name(tag: str) -> str:
    """"pl" -> "Polish", "en-GB" -> "English (en-GB)"; an unknown tag as written."""
    base = tag.split("-", 1)[0].casefold()
    name = LANGUAGE_NAMES.get(base)
    if name is None:
        return tag
    return name if base == tag.casefold() else f"{name} ({tag})"


def _common_values(customer: dict | None, intent: str | None) -> dict[str, Any]:
    # Only values that exist: a message naming a missing one is not shown.
    values: dict[str, Any] = {}
    if customer is not None:
        for key in _CUSTOMER_FIELDS:
            value = customer.get(key)
            if value is not None and value != "":
                values[key] = value
        name = customer.get("name")
        if isinstance(name, str) and name.split():
            values["first_name"] = name.split()[0]
    if intent is not None:
        values["intent"] = intent
    return values


def _recent_bottom_2_box(rule: PromptRule, entries: list[dict], now_ms: int) -> dict | None:
    assert rule.within_days is not None
    oldest = now_ms - rule.within_days * DAY_MS
    best: tuple[int, dict, dict, tuple[int, int]] | None = None
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("channel") != "survey":
            continue
        payload = entry.get("payload")
        if not isinstance(payload, dict):
            continue
        score = payload.get("score")
        if not _is_int(score):
            continue
        try:
            scale = survey_scale(payload)
        except (TypeError, ValueError):
            continue
        if not is_bottom_2_box(score, scale[0]):
            continue
        occurred = parse_ms(entry.get("occurred_at"))
        # Newest first is the timeline's order, but late entries are cheap to allow for.
        if occurred is None or occurred < oldest or (best is not None and occurred <= best[0]):
            continue
        best = (occurred, entry, payload, scale)
    if best is None:
        return None
    occurred, entry, payload, (low, high) = best
    days_ago = max(0, (now_ms - occurred) // DAY_MS)
    comment = payload.get("comment")
    comment = " ".join(comment.split()) if isinstance(comment, str) else ""
    shown = comment if len(comment) <= _COMMENT_CHARS else comment[:_COMMENT_CHARS - 1] + "\u2026"
    channel = payload.get("contact_channel")
    if not isinstance(channel, str) or not channel.strip():
        channel = _rated_channel(entries, payload.get("contact_id"))
    return {
        "score": payload["score"],
        "scale_min": low,
        "scale_max": high,
        "contact_channel": channel.strip() if isinstance(channel, str) else None,
        "date": parse_rfc3339(entry["occurred_at"]).date().isoformat(),
        "days_ago": days_ago,
        "ago": "today" if days_ago == 0 else "yesterday" if days_ago == 1 else
               f"{days_ago} days ago",
        "comment": comment,
        "comment_part": f' and said "{shown}"' if shown else "",
    }


def _rated_channel(entries: Iterable[dict], contact_id: Any) -> str | None:
    """The channel of the entry a survey rates (by its event id or its channel's id)."""
    if not isinstance(contact_id, str) or not contact_id:
        return None
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("channel") == "survey":
            continue
        key = contact_key(entry)
        if entry.get("event_id") == contact_id or (key is not None and key[1] == contact_id):
            channel = entry.get("channel")
            return channel if isinstance(channel, str) and channel else None
    return None


def _repeat_contact(rule: PromptRule, entries: Iterable[dict], intent: str | None,
                    contact: dict | None, now_ms: int) -> dict | None:
    assert rule.within_days is not None and rule.min_contacts is not None
    if intent is None:
        return None
    # The window ends at the contact being taken: later entries are not "before" it.
    end = parse_ms(contact.get("occurred_at")) if isinstance(contact, dict) else None
    end = now_ms if end is None else end
    start = end - rule.within_days * DAY_MS
    keys: set[tuple[str, str]] = set()
    if isinstance(contact, dict) and (key := contact_key(contact)) is not None:
        keys.add(key)
    folded: dict[str, str | None] = {}  # a timeline repeats a handful of intent spellings
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        payload = entry.get("payload")
        if not isinstance(payload, dict):
            continue
        named = payload.get("intent")
        if named != intent:
            if not isinstance(named, str):
                continue
            if named not in folded:
                folded[named] = normalise_intent(named)
            if folded[named] != intent:
                continue
        key = contact_key(entry)
        if key is None or key in keys:
            continue
        occurred = parse_ms(entry.get("occurred_at"))
        if occurred is not None and start <= occurred <= end:
            keys.add(key)
    if len(keys) < rule.min_contacts:
        return None
    return {"count": len(keys), "days": rule.within_days}


def _customer_attribute(rule: PromptRule, customer: dict | None) -> dict | None:
    if customer is None or rule.attribute is None:
        return None
    value = customer.get(rule.attribute)
    if value is None or not _compare(value, rule.comparator, rule.operand):
        return None
    return {"attribute": rule.attribute, "value": value}


def _compare(value: Any, comparator: str | None, operand: Any) -> bool:
    if comparator == "equals":
        return _same(value, operand)
    if comparator == "in":
        return any(_same(value, item) for item in operand)
    number = _as_number(value)
    if number is None:
        return False
    return number < operand if comparator == "below" else number > operand


def _same(value: Any, expected: Scalar) -> bool:
    # CRM exports differ in capitals ("VIP", "vip"); true must not equal 1.
    if isinstance(expected, str):
        return isinstance(value, str) and value.strip().casefold() == expected.casefold()
    if isinstance(expected, bool) or isinstance(value, bool):
        return value is expected
    return _is_number(value) and value == expected


def _as_number(value: Any) -> float | None:
    if _is_number(value):
        number = float(value)
    elif isinstance(value, str):
        try:  # CRM exports often carry numbers as text
            number = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    else:
        return None
    return None if number != number else number  # NaN compares false with everything
