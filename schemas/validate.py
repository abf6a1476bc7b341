"""The "validate" stage: raw Kafka values in, an Interaction or a Rejection out.

Pure functions, no I/O, so the stream workers, the tests and the benchmark all
run the same code.  The JSON Schema files in `schemas/` are the contract; this
module adds the checks a schema cannot express (timestamp semantics, the
type/topic channel match, the survey scale) and turns every failure into one
of the stable dead-letter reason codes with a message a person can act on.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import fastjsonschema
import orjson

from kernel.times import RFC3339, epoch_ms, parse_rfc3339
from schemas import (
    PAYLOAD_VALIDATORS,
    JsonSchemaValueException,
    Validator,
    load_schema,
    validator,
)
from schemas import validate_customer as _validate_customer_schema
from schemas.catalog import refs
from schemas.registry import is_valid_check

# Stable reason codes (deadletter.v1.json enumerates the same list).
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
SCHEMA_VIOLATION = "schema_violation"
CHANNEL_MISMATCH = "channel_mismatch"
INVALID_TIMESTAMP = "invalid_timestamp"
NO_CUSTOMER = "no_customer"
SCORE_OUT_OF_SCALE = "score_out_of_scale"
TOO_LARGE = "too_large"
# Alert actions only (domain.alerts decides these).
UNKNOWN_ALERT = "unknown_alert"
UNKNOWN_ACTOR = "unknown_actor"
INVALID_TRANSITION = "invalid_transition"
CATEGORY_REQUIRED = "category_required"
REASONS: tuple[str, ...] = (
    INVALID_JSON, NOT_AN_OBJECT, SCHEMA_VIOLATION, CHANNEL_MISMATCH,
    INVALID_TIMESTAMP, NO_CUSTOMER, SCORE_OUT_OF_SCALE, TOO_LARGE,
    UNKNOWN_ALERT, UNKNOWN_ACTOR, INVALID_TRANSITION, CATEGORY_REQUIRED,
)

DEFAULT_SCALE_MIN = 1
DEFAULT_SCALE_MAX = 5
IDENTITY_FIELDS: tuple[str, ...] = ("phone", "email", "social")  # also the priority order
# orjson parses 1024 levels of nesting but serialises only 254, and accepted
# values are re-serialised inside timeline entries and alerts; real sources
# nest a handful of levels, so a generous limit far below 254 keeps room.
MAX_DEPTH = 64

# occurred_at is parsed by kernel.times.parse_rfc3339(strict=True): RFC 3339
# section 5.6 only, since other consumers of the timeline cannot parse the rest of
# what fromisoformat accepts (week dates, no offset).
# The last instant Python's datetime (and so every UTC rendering of occurred_ms, such
# as the survey hour buckets) can represent: an offset like -23:59 on 9999-12-31
# would otherwise name an instant in the year 10000.
_MAX_MS = epoch_ms(datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC))
_INDEX = re.compile(r"\[\d+\]")


def _envelope_document() -> dict[str, Any]:
    # The file's anyOfs are checked by hand instead: the top-level one (customer_id
    # or identity) by _require_customer, with its own reason code, and identity's
    # (phone, email or social) by _require_identifier.  Compiled in, each costs a
    # raised-and-caught exception, which fastjsonschema builds with its schema
    # excerpt, on every event taking a later branch (identity-only, e-mail-only).
    document = {k: v for k, v in load_schema("envelope.v1").items() if k != "anyOf"}
    properties = document["properties"] = dict(document["properties"])
    properties["identity"] = {k: v for k, v in properties["identity"].items() if k != "anyOf"}
    return document


def _event_document(channel: str) -> dict[str, Any]:
    """The envelope file with its `payload` narrowed to payloads/<channel>.v1.json: one
    yes/no check of the whole event instead of one of the envelope and one of the payload.
    The file's anyOfs stay in (jsonschema-rs answers them without raising), so this
    accepts only what the envelope validator, _require_identifier and the payload
    validator all accept."""
    document = load_schema("envelope.v1")
    payload = load_schema(f"payloads/{channel}.v1")
    if next(refs(payload), None) is not None:
        # Its $refs would resolve against the envelope's $id once embedded.
        raise ValueError(f"payloads/{channel}.v1.json uses $ref; _event_document cannot embed it")
    for key in ("$schema", "$id"):
        payload.pop(key, None)
    properties = document["properties"]
    properties["payload"] = {"allOf": [properties["payload"], payload]}
    return document


@dataclass(frozen=True, slots=True)
class _ChannelChecks:
    """What check_interaction needs for the topic of one channel."""

    is_valid: Callable[[Any], bool]  # the whole event, see _event_document
    validate_payload: Validator  # words the refusals
    type_prefix: str  # "call.": the type of every event on the channel's topic starts so


_validate_envelope_schema = fastjsonschema.compile(_envelope_document(), use_default=False)
# Most events are valid: a yes from the fast check skips both validators (whose work is
# the failure's path and rule, for the message).
_CHANNEL_CHECKS = {
    channel: _ChannelChecks(is_valid_check(_event_document(channel)), payload_validator,
                            f"{channel}.")
    for channel, payload_validator in PAYLOAD_VALIDATORS.items()
}
_validate_action_schema = validator("alert-action.v1")
_validate_identity_action_schema = validator("identity-action.v1")
_validate_agent_schema = validator("agent.v1")
# The same yes/no short-cut for the records (a tenth of the validator's cost on a valid
# customer record, which matters when a CRM reloads them all).  Not for agent.v1: its
# "format": "date-time" is read differently by the two libraries.
_customer_is_valid = is_valid_check(load_schema("customer.v1"))
_action_is_valid = is_valid_check(load_schema("alert-action.v1"))
_identity_action_is_valid = is_valid_check(load_schema("identity-action.v1"))
_validate_self_service_schema = validator("self-service.v1")
_self_service_is_valid = is_valid_check(load_schema("self-service.v1"))

# Values quoted in messages are cut short: a message is for reading, and the
# dead-letter record already carries the original bytes.
_short = reprlib.Repr()
_short.maxstring = 60
_short.maxother = 60
_short.maxlevel = 2

# Wordings for schema rules whose generated message would only quote a regex.
_FRIENDLY: dict[tuple[str, str], str] = {
    ("type", "pattern"): "must be a dotted lower-case type, channel first, like 'call.ended'",
    ("customer_id", "pattern"):
        "must not start with '~' (reserved for provisional ids) or '}' (it would close the "
        "Redis Cluster hash tag) or contain control characters",
    ("identity", "anyOf"): "must give at least one of phone, email, social",
    ("identity.phone", "pattern"): "must be an E.164 phone number like '+442071234567'",
    ("identity.email", "pattern"): "must be an e-mail address like 'ada@example.org'",
    ("identity.social.network", "pattern"):
        "must be a network name like 'x' (letters, digits, '_', '.', '-')",
    ("identity.social.handle", "pattern"):
        "must contain a character other than '@' and spaces, and no control characters",
    ("identifiers.phones", "pattern"): "must be an E.164 phone number like '+442071234567'",
    ("identifiers.emails", "pattern"): "must be an e-mail address like 'ada@example.org'",
    ("identifiers.social.network", "pattern"):
        "must be a network name like 'x' (letters, digits, '_', '.', '-')",
    ("identifiers.social.handle", "pattern"):
        "must contain a character other than '@' and spaces, and no control characters",
    # cx.self-service.v1 (check_self_service)
    ("event_id", "pattern"): "must be letters, digits and . _ : - only",
    ("actor", "pattern"): "must be '<role>:<subject>', e.g. 'customer:C-000001'",
    ("payload.note_id", "pattern"): "must be letters, digits and . _ : - only",
    ("payload.text", "pattern"): "must contain a character other than white space",
    ("payload.contact_hours.from", "pattern"): "must be a time HH:MM from 00:00 to 23:59",
    ("payload.contact_hours.to", "pattern"): "must be a time HH:MM from 00:00 to 23:59",
    ("payload.time_zone", "pattern"): "must be an IANA time zone such as 'Europe/London'",
    ("payload.language", "pattern"):
        "must be a BCP 47 language tag with a lower-case primary subtag, e.g. 'en', 'pt-BR'",
}
# Rules where quoting the offending value helps; for the others it is noise.
_QUOTE_VALUE = frozenset(
    {"type", "enum", "const", "pattern", "minimum", "maximum", "exclusiveMinimum",
     "exclusiveMaximum", "minLength", "maxLength"}
)


# slots, not frozen: one is made per event, and a frozen dataclass costs 4x as much to create.
@dataclass(slots=True)
class Interaction:
    """An accepted inbound event."""

    event_id: str
    channel: str
    type: str
    occurred_at: str  # as received
    occurred_ms: int  # epoch milliseconds (UTC): the timeline sort score
    customer_id: str | None
    identity: dict | None  # normalised; only the keys that were given
    payload: dict  # as received, unknown fields included


@dataclass(frozen=True, slots=True)
class AccountEvent:
    """An accepted cx.self-service.v1 event (schemas/self-service.v1.json)."""

    event_id: str
    type: str  # account.note_added | account.note_deleted | account.preferences_set
    customer_id: str
    occurred_at: str  # as received
    occurred_ms: int
    actor: str
    payload: dict


@dataclass(frozen=True, slots=True)
class Rejection:
    """A rejected input: a stable reason code and a message for people."""

    reason: str
    message: str


class _Rejected(Exception):
    """Internal short-cut: raised by a check, turned into a Rejection at the top."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.rejection = Rejection(reason, message)


# --------------------------------------------------------------------------- public API


def check_interaction(
    raw: bytes | None, channel: str, *, max_bytes: int
) -> Interaction | Rejection:
    """Validate one value from the inbound topic of `channel`.

    Never raises for any `raw`: every problem is a Rejection.  An unknown
    `channel` is a programming error and does raise ValueError.
    """
    checks = _CHANNEL_CHECKS.get(channel)
    if checks is None:
        raise ValueError(f"unknown channel {channel!r}; expected one of {list(PAYLOAD_VALIDATORS)}")
    try:
        return _check_interaction(raw, channel, checks, max_bytes)
    except _Rejected as rejected:
        return rejected.rejection
    except Exception as exc:  # the stage must never crash a worker on bad input
        return _unexpected(exc)


def check_customer(raw: bytes) -> dict | Rejection:
    """Validate a non-null value from cx.customers.v1; returns the record as received."""
    return _check_object(raw, _validate_customer_schema, _customer_is_valid)


def check_action(raw: bytes | None) -> dict | Rejection:
    """Validate a value from cx.alert-actions.v1 (schemas/alert-action.v1.json)."""
    return _check_object(raw, _validate_action_schema, _action_is_valid)


def _check_object(raw: bytes | None, validate: Validator,
                  is_valid: Callable[[Any], bool] | None = None) -> dict | Rejection:
    try:
        value = _decode_object(raw)
        if is_valid is None or not is_valid(value):
            _run_schema(validate, value, "data")
        return value
    except _Rejected as rejected:
        return rejected.rejection
    except Exception as exc:  # same promise as check_interaction
        return _unexpected(exc)


def check_identity_action(raw: bytes | None) -> dict | Rejection:
    """Validate a value from cx.identity-actions.v1 (schemas/identity-action.v1.json)."""
    return _check_object(raw, _validate_identity_action_schema, _identity_action_is_valid)


def check_agent_record(raw: bytes, key: bytes | None) -> dict | Rejection:
    """Validate a non-null value from cx.agents.v1 (schemas/agent.v1.json) and its key:
    the topic is compacted by key, so a key other than the record's agent_id would keep
    the wrong record of an agent (or two of one)."""
    checked = _check_object(raw, _validate_agent_schema)
    if isinstance(checked, Rejection):
        return checked
    named = None if key is None else key.decode("utf-8", "replace")
    if named != checked["agent_id"]:
        return Rejection(SCHEMA_VIOLATION, f"agent_id: {_short.repr(checked['agent_id'])} "
                         f"differs from the record's key {_short.repr(named)} (the topic is "
                         "compacted by agent_id)")
    return checked


def check_self_service(raw: bytes | None, *, max_bytes: int) -> AccountEvent | Rejection:
    """Validate a value from cx.self-service.v1; never raises for any `raw`.  Beyond the
    schema: occurred_at as for interactions, a time_zone that zoneinfo knows, and
    contact hours that are a window (`from` differs from `to`)."""
    try:
        if raw is not None and len(raw) > max_bytes:
            raise _Rejected(TOO_LARGE, f"value is {len(raw)} bytes, more than the limit of "
                            f"{max_bytes} bytes")
        event = _decode_object(raw)
        if not _self_service_is_valid(event):
            _run_schema(_validate_self_service_schema, event, "data")
        occurred_ms = _parse_occurred_at(event["occurred_at"])
        if event["type"] == "account.preferences_set":
            _check_preferences(event["payload"])
        return AccountEvent(event["event_id"], event["type"], event["customer_id"],
                            event["occurred_at"], occurred_ms, event["actor"], event["payload"])
    except _Rejected as rejected:
        return rejected.rejection
    except Exception as exc:  # same promise as check_interaction
        return _unexpected(exc)


def _check_preferences(preferences: dict) -> None:
    zone = preferences.get("time_zone")
    if zone is not None and zone not in _time_zones():
        raise _Rejected(SCHEMA_VIOLATION, f"payload.time_zone: {_short.repr(zone)} is not an "
                        "IANA time zone (e.g. 'Europe/London', 'America/New_York', 'UTC')")
    hours = preferences.get("contact_hours")
    if hours is not None and hours["from"] == hours["to"]:
        raise _Rejected(SCHEMA_VIOLATION, f"payload.contact_hours.to: must differ from "
                        f"payload.contact_hours.from (both {hours['from']!r}); leave "
                        "contact_hours null for any time")


@cache
def _time_zones() -> frozenset[str]:
    # Read once: available_timezones() walks the zone database on every call.
    return frozenset(available_timezones())


def identity_keys(identity: dict) -> list[str]:
    """Normalised identifier keys in priority order: phone, email, social.

    Accepts a raw or an already normalised identity; bad values are skipped.
    """
    normal = normalise_identity(identity) or {}
    keys: list[str] = []
    if "phone" in normal:
        keys.append(f"phone:{normal['phone']}")
    if "email" in normal:
        keys.append(f"email:{normal['email']}")
    if "social" in normal:
        social = normal["social"]
        keys.append(f"social:{social['network']}:{social['handle']}")
    return keys


def customer_identity_keys(record: dict) -> list[str]:
    """Every identifier key of a customer record: phones, then emails, then social; no repeats."""
    identifiers = record.get("identifiers")
    if not isinstance(identifiers, dict):
        return []
    keys: list[str] = []
    for phone in _list(identifiers.get("phones")):
        keys.extend(identity_keys({"phone": phone}))
    for email in _list(identifiers.get("emails")):
        keys.extend(identity_keys({"email": email}))
    for social in _list(identifiers.get("social")):
        keys.extend(identity_keys({"social": social}))
    return list(dict.fromkeys(keys))


def survey_scale(payload: dict) -> tuple[int, int]:
    """(scale_min, scale_max) of a survey payload, with the contract's defaults 1 and 5."""
    low = payload.get("scale_min")
    high = payload.get("scale_max")
    return (
        DEFAULT_SCALE_MIN if low is None else int(low),
        DEFAULT_SCALE_MAX if high is None else int(high),
    )


def normalise_identity(identity: Any) -> dict | None:
    """The comparable form of an identity; None when it names nobody."""
    if not isinstance(identity, dict):
        return None
    normal: dict[str, Any] = {}
    phone = identity.get("phone")
    if isinstance(phone, str) and (phone := "".join(phone.split())):
        normal["phone"] = phone
    email = identity.get("email")
    if isinstance(email, str) and (email := email.strip().lower()):
        normal["email"] = email
    social = _normalise_social(identity.get("social"))
    if social is not None:
        normal["social"] = social
    return normal or None


# --------------------------------------------------------------------------- the checks


def _check_interaction(
    raw: bytes | None, channel: str, checks: _ChannelChecks, max_bytes: int
) -> Interaction:
    if raw is not None and len(raw) > max_bytes:
        # Checked before decoding so an oversized value costs no parsing.
        raise _Rejected(
            TOO_LARGE, f"value is {len(raw)} bytes, more than the limit of {max_bytes} bytes"
        )
    event = _decode_object(raw)
    # A yes here implies a yes from every check below (the fast check is never more
    # lenient: tests/unit/schemas/test_fast_check.py), so those run only for a refusal.
    if not (checks.is_valid(event) and event["type"].startswith(checks.type_prefix)
            and (type(event.get("customer_id")) is str or _names_customer(event))):
        # In this order, for the reason and message of the first failure.
        _require_customer(event)  # must stay before the envelope schema, see _envelope_document
        _run_schema(_validate_envelope_schema, event, "data")
        _require_identifier(event.get("identity"))
        _check_channel(event["type"], channel)
        _run_schema(checks.validate_payload, event["payload"], "payload")
    payload = event["payload"]
    occurred_ms = _parse_occurred_at(event["occurred_at"])
    if channel == "survey":
        _check_survey_scale(payload)
    identity = event.get("identity")
    # Positional: eight keyword arguments cost more than the dataclass's __init__ itself.
    return Interaction(event["event_id"], channel, event["type"], event["occurred_at"],
                       occurred_ms, event.get("customer_id"),
                       None if identity is None else normalise_identity(identity), payload)


def _decode_object(raw: bytes | None) -> dict:
    if not raw:
        raise _Rejected(INVALID_JSON, "value is empty: expected a JSON object")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:  # also raised for invalid UTF-8
        raise _Rejected(INVALID_JSON, f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _Rejected(NOT_AN_OBJECT, f"expected a JSON object, got {_json_type(value)}")
    # Cheap pre-filter: nesting deeper than MAX_DEPTH needs more opening brackets (counted
    # in one pass: deleting them is 30% cheaper than two counts).
    brackets = len(raw) - len(raw.translate(None, b"{["))
    if brackets > MAX_DEPTH and _deeper_than(value, MAX_DEPTH):
        raise _Rejected(SCHEMA_VIOLATION, f"value: nested more than {MAX_DEPTH} levels deep")
    return value


def _deeper_than(value: dict, limit: int) -> bool:
    # Iterative, so hostile nesting cannot hit Python's recursion limit.
    stack: list[tuple[dict | list, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                if depth >= limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _names_customer(event: dict) -> bool:
    """A customer_id, or an identity with at least one identifier that is not null."""
    if isinstance(event.get("customer_id"), str):
        return True
    identity = event.get("identity")
    # map and count, not any() over a generator: a third of the cost.
    return (isinstance(identity, dict)
            and list(map(identity.get, IDENTITY_FIELDS)).count(None) < len(IDENTITY_FIELDS))


def _require_customer(event: dict) -> None:
    # Runs before the schema so that "nobody to attach this to" gets its own
    # reason code instead of the schema's generic anyOf failure.
    if _names_customer(event):
        return
    customer_id = event.get("customer_id")
    if customer_id is not None:
        detail = f"customer_id must be a string (got {_short.repr(customer_id)})"
    else:
        detail = "no customer_id"
    raise _Rejected(
        NO_CUSTOMER, f"{detail} and no identity (phone, email or social) to resolve the customer"
    )


def _require_identifier(identity: object) -> None:
    # The identity anyOf of schemas/envelope.v1.json (see _compile_envelope).
    if isinstance(identity, dict) and not any(k in identity for k in IDENTITY_FIELDS):
        raise _Rejected(SCHEMA_VIOLATION,
                        f"identity: {_FRIENDLY[('identity', 'anyOf')]}")


def _check_channel(event_type: str, channel: str) -> None:
    prefix = event_type.split(".", 1)[0]
    if prefix != channel:
        raise _Rejected(
            CHANNEL_MISMATCH,
            f"type: {event_type!r} belongs to channel {prefix!r}, "
            f"but the record came from the {channel!r} topic",
        )


def _parse_occurred_at(text: str) -> int:
    """Epoch milliseconds of an RFC 3339 timestamp with offset."""
    try:
        moment = parse_rfc3339(text, strict=True)
    except ValueError:  # not the syntax, or e.g. month 13, 25:00, Feb 30
        # Only a text the syntax refused can look offsetless: with an offset, +"Z" fails.
        hint = " (add 'Z' or '+hh:mm')" if _looks_offsetless(text) else ""
        raise _Rejected(INVALID_TIMESTAMP, _not_rfc3339(text) + hint) from None
    millis = epoch_ms(moment)
    if millis < 0:
        raise _Rejected(
            INVALID_TIMESTAMP, f"occurred_at: {text!r} is before 1970-01-01T00:00:00Z"
        )
    if millis > _MAX_MS:
        raise _Rejected(
            INVALID_TIMESTAMP, f"occurred_at: {text!r} is after 9999-12-31T23:59:59.999Z"
        )
    return millis


def _not_rfc3339(text: str) -> str:
    return f"occurred_at: {_short.repr(text)} is not an RFC 3339 timestamp with offset"


def _looks_offsetless(text: str) -> bool:
    return RFC3339.fullmatch(text + "Z") is not None


def _check_survey_scale(payload: dict) -> None:
    low, high = survey_scale(payload)
    if low >= high:
        raise _Rejected(
            SCHEMA_VIOLATION,
            f"payload.scale_min: {low} must be less than payload.scale_max ({high})",
        )
    score = payload["score"]
    if not low <= score <= high:
        shown = int(score) if float(score).is_integer() else score
        raise _Rejected(
            SCORE_OUT_OF_SCALE, f"payload.score: {shown} is outside the scale {low}..{high}"
        )


# --------------------------------------------------------------------------- helpers


def _run_schema(validate: Validator, data: Any, root: str) -> None:
    try:
        validate(data, name_prefix=root)
    except JsonSchemaValueException as exc:
        raise _Rejected(*_schema_failure(exc, root)) from None


def _schema_failure(exc: JsonSchemaValueException, root: str) -> tuple[str, str]:
    """(reason, message) for a schema failure, with a field path people can read."""
    name = exc.name or root
    path = "" if name == "data" else name.removeprefix("data.")
    rule = exc.rule or ""
    if rule == "anyOf" and not path:
        return NO_CUSTOMER, "neither customer_id nor identity given"
    if rule == "required":
        return SCHEMA_VIOLATION, _missing_message(exc, path)
    friendly = _FRIENDLY.get((_INDEX.sub("", path), rule))
    detail = friendly or exc.message[len(name):].strip()
    if rule in _QUOTE_VALUE:
        detail += f" (got {_short.repr(exc.value)})"
    return SCHEMA_VIOLATION, f"{path or 'value'}: {detail}"


def _missing_message(exc: JsonSchemaValueException, path: str) -> str:
    required = (exc.definition or {}).get("required", [])
    present = exc.value if isinstance(exc.value, dict) else {}
    missing = [key for key in required if key not in present] or required
    fields = ", ".join(f"{path}.{key}" if path else key for key in missing)
    return f"{fields}: {'is' if len(missing) == 1 else 'are'} required"


def _unexpected(exc: Exception) -> Rejection:
    return Rejection(
        SCHEMA_VIOLATION, f"value could not be checked: {type(exc).__name__}: {_short.repr(exc)}"
    )


def _normalise_social(social: Any) -> dict | None:
    if not isinstance(social, dict):
        return None
    network = social.get("network")
    handle = social.get("handle")
    if not isinstance(network, str) or not isinstance(handle, str):
        return None
    network = network.strip().lower()
    handle = handle.strip().lstrip("@").strip().lower()
    if not network or not handle:
        return None
    return {"network": network, "handle": handle}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "a number"
