"""Time as the product writes it: RFC 3339, UTC, millisecond precision."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from kernel.errors import InputError

# RFC 3339 section 5.6 date-time; fromisoformat alone would also accept ISO 8601
# forms that other consumers of the timeline cannot parse (week dates, no offset).
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,9})?"
    r"(?:[Zz]|[+-][0-9]{2}:[0-9]{2})"
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)
ONE_US = timedelta(microseconds=1)


def utc_now_iso() -> str:
    return iso_ms(int(datetime.now(UTC).timestamp() * 1000))


def iso_ms(epoch_ms: int) -> str:
    """RFC 3339, UTC, millisecond precision: 2026-11-22T10:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_datetime(moment: datetime) -> str:
    """`moment` as iso_ms writes it: UTC, millisecond precision, 'Z' suffix.

    A naive datetime is taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_rfc3339(text: str, *, strict: bool = False, lower_z: bool = True) -> datetime:
    """The one parser of timestamps in text; ValueError when `text` is not one.

    strict=True (the validate stage, what may go on a timeline): RFC 3339
    section 5.6 only, offset required, 't' and 'z' in either case; the result
    is always aware.

    strict=False (reading stored entries, time filters): whatever
    datetime.fromisoformat reads, so other ISO 8601 forms too (week dates,
    '2026-11-22T10:00'); a time without offset gives a naive datetime and the
    caller says what that means.  lower_z=True also reads a trailing lower-case
    'z' (RFC 3339 allows it, 3.11's fromisoformat does not); lower_z=False
    refuses it, as the CLI and API time filters always have.
    """
    if strict:
        if not RFC3339.fullmatch(text):
            raise ValueError(f"not an RFC 3339 timestamp with offset: {text!r}")
        # 3.11's fromisoformat takes 'Z' but not the lower-case forms RFC 3339 allows.
        moment = datetime.fromisoformat(text.upper())
        if moment.tzinfo is None:  # unreachable after the regex; kept as the real guard
            raise ValueError(f"not an RFC 3339 timestamp with offset: {text!r}")
        return moment
    if lower_z and text.endswith("z"):
        text = text[:-1] + "Z"
    return datetime.fromisoformat(text)


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds of an aware datetime, exact (floored, no float on the way)."""
    zone = moment.tzinfo
    if type(zone) is not timezone:  # naive (TypeError below) or an offset that varies
        return (moment - EPOCH) // ONE_MS
    # A fixed offset, as parse_rfc3339 gives: computed from the fields with the offset
    # cached, 40% cheaper than the subtraction, which asks both zones for theirs.
    offset_us = _OFFSET_US.get(zone)
    if offset_us is None:
        offset_us = _fixed_offset_us(zone)
    local_s = ((moment.toordinal() - _EPOCH_ORDINAL) * 86_400 + moment.hour * 3_600
               + moment.minute * 60 + moment.second)
    return (local_s * 1_000_000 + moment.microsecond - offset_us) // 1_000


_EPOCH_ORDINAL = EPOCH.toordinal()
_OFFSET_US: dict[timezone, int] = {}  # microseconds east of UTC, per fixed offset seen


def _fixed_offset_us(zone: timezone) -> int:
    offset_us = zone.utcoffset(None) // ONE_US
    if len(_OFFSET_US) < 4096:  # RFC 3339 offsets are whole minutes: at most 2,879 of them
        _OFFSET_US[zone] = offset_us
    return offset_us

_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class BadTime(InputError):
    pass


def parse_time(text: str, *, now: datetime | None = None) -> int:
    """RFC 3339 timestamp, or an age such as 90m, 24h, 7d: epoch milliseconds.

    The one parser of time filters (CLI and HTTP API); BadTime says what is wrong.
    """
    shown = repr(text) if len(text) <= 40 else repr(text[:40]) + "..."
    match = _RELATIVE.match(text.strip())
    if match:
        try:
            delta = timedelta(**{_UNITS[match[2]]: int(match[1])})
            return int(((now or datetime.now(UTC)) - delta).timestamp() * 1000)
        except (OverflowError, ValueError):  # before the year 1, or beyond timedelta
            raise BadTime(f"{shown} reaches back before the year 1") from None
    try:
        parsed = parse_rfc3339(text.strip(), lower_z=False)
    except ValueError:
        raise BadTime(
            f"{shown} is neither an RFC 3339 timestamp (2026-11-22T10:00:00Z) "
            "nor an age like 90m, 24h, 7d"
        ) from None
    if parsed.tzinfo is None:
        raise BadTime(f"{shown} has no UTC offset; add Z or +01:00")
    return int(parsed.timestamp() * 1000)
