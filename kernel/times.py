"""Time as the product writes it: RFC 3339, UTC, millisecond precision."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from kernel.errors import InputError


def utc_now_iso() -> str:
    return iso_ms(int(datetime.now(UTC).timestamp() * 1000))


def iso_ms(epoch_ms: int) -> str:
    """RFC 3339, UTC, millisecond precision: 2026-11-22T10:00:00.000Z."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")

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
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise BadTime(
            f"{shown} is neither an RFC 3339 timestamp (2026-11-22T10:00:00Z) "
            "nor an age like 90m, 24h, 7d"
        ) from None
    if parsed.tzinfo is None:
        raise BadTime(f"{shown} has no UTC offset; add Z or +01:00")
    return int(parsed.timestamp() * 1000)
