"""When a customer wants to be contacted: their contact hours read in their own time
zone, at a given instant (pure: the caller passes the instant).

The preferences object is the one of cx.self-service.v1 (schemas/self-service.v1.json):

    {"contact_hours": {"from": "09:00", "to": "17:30", "days": ["mon", ..., "fri"]},
     "time_zone": "Europe/London", ...}

A window opens at `from` on each listed day, local time, and closes at `to`; a `to`
at or before `from` closes on the next day (22:00-06:00 on "fri" runs from Friday
night into Saturday morning; 09:00-09:00 is the whole day).  Each window is turned
into UTC with zoneinfo separately, so a window on the day the clocks change is as
long as the customer's wall clock says, and every comparison is made in UTC
(Python compares two times of one zone by their wall clock alone, which is wrong
across a change).  A local time the clocks skip is read with the offset before the
change (01:30 on the spring-forward night in London is 02:30 BST), as PEP 495's
fold=0 does.

Nothing here raises on what the customer sent: the worker validated it, but an
older record or a zone the system's tz database lacks must not break the agent or
advisory page, so an unusable value gives "no preference" with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kernel.times import iso_datetime

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # datetime.weekday() order
_DAY_LABELS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_HH_MM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
INSIDE, OUTSIDE, NO_PREFERENCE = "inside", "outside", "no_preference"
# A window may have opened the day before (past midnight); the next one opens within
# a week of today, and a few days more leave room for windows a clock change empties.
_DAYS_BACK, _DAYS_AHEAD = 1, 9
EN_DASH = "\u2013"


@dataclass(frozen=True, slots=True)
class ContactHoursNow:
    """The customer's contact hours at one instant, as the pages show them.

    status: "inside" or "outside" their hours, or "no_preference" (no hours set, or
    unusable: `reason` says why).  Times ending in _at are UTC RFC 3339; the _text
    ones are the customer's wall clock ("Tue 18:05 GMT", "tomorrow 09:00").
    """

    status: str
    time_zone: str | None = None  # the zone the hours are read in
    local_time: str | None = None  # ISO 8601 with the zone's offset
    local_text: str | None = None
    hours_text: str | None = None  # "Mon-Fri 09:00-17:30 Europe/London" (en dashes)
    closes_at: str | None = None  # inside: when this window closes
    closes_text: str | None = None
    next_window_at: str | None = None  # outside: when the next window opens
    next_window_text: str | None = None
    reason: str | None = None  # why there is no preference, or how the hours were read

    @property
    def inside(self) -> bool | None:
        return None if self.status == NO_PREFERENCE else self.status == INSIDE

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "inside": self.inside}


@dataclass(frozen=True, slots=True)
class _Hours:
    opens: time
    closes: time
    days: frozenset[int]  # weekday numbers, Monday 0


class _Unusable(ValueError):
    """A preference that cannot be read; the message is the reason shown."""


def contact_hours_now(preferences: Mapping[str, Any] | None, now: datetime) -> ContactHoursNow:
    """Whether `now` (aware; a naive one is taken as UTC) is inside the customer's
    contact hours, their local time, and when the current window closes or the next
    one opens."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    if not isinstance(preferences, Mapping):
        return ContactHoursNow(NO_PREFERENCE, reason="no preferences set")
    named = preferences.get("time_zone")
    try:
        zone = _zone(named)
    except _Unusable as exc:
        return ContactHoursNow(NO_PREFERENCE, reason=str(exc))
    zone_name = named if zone is not None and isinstance(named, str) else "UTC"
    local = now.astimezone(zone or UTC)
    clock = {"time_zone": zone_name if zone is not None else None,
             "local_time": local.isoformat(timespec="seconds"),
             "local_text": f"{_DAY_LABELS[local.weekday()]} {local:%H:%M} {_abbreviation(local)}"}
    raw = preferences.get("contact_hours")
    if raw is None:
        return ContactHoursNow(NO_PREFERENCE, **clock, reason="no contact hours set")
    try:
        hours = _hours(raw)
    except _Unusable as exc:
        return ContactHoursNow(NO_PREFERENCE, **clock, reason=str(exc))
    clock["time_zone"] = zone_name
    note = None if zone is not None else "no time zone set: the hours are read as UTC"
    text = (f"{days_text(hours.days)} {hours.opens:%H:%M}{EN_DASH}{hours.closes:%H:%M} "
            f"{zone_name}")
    if len(hours.days) == 7 and hours.opens == hours.closes:  # a window that never closes
        return ContactHoursNow(INSIDE, **clock, hours_text=f"Every day, any time {zone_name}",
                               reason=note)
    today = local.date()
    for opens, closes in _windows(hours, zone or UTC, today):
        if opens <= now < closes:
            return ContactHoursNow(INSIDE, **clock, hours_text=text,
                                   closes_at=iso_datetime(closes),
                                   closes_text=_when_text(closes, zone or UTC, today),
                                   reason=note)
        if opens > now:
            return ContactHoursNow(OUTSIDE, **clock, hours_text=text,
                                   next_window_at=iso_datetime(opens),
                                   next_window_text=_when_text(opens, zone or UTC, today),
                                   reason=note)
    return ContactHoursNow(OUTSIDE, **clock, hours_text=text, reason=note)


def _zone(named: Any) -> ZoneInfo | None:
    """The customer's zone; None when they set none (the hours are then read as UTC)."""
    if named is None or named == "":
        return None
    if not isinstance(named, str):
        raise _Unusable(f"time_zone is not a zone name: {named!r}")
    try:
        return ZoneInfo(named)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: a path-like or malformed key ("../x"); OSError: an unreadable file.
        raise _Unusable(f"unknown time zone {named[:60]!r}: contact hours not applied") from None


def _hours(raw: Any) -> _Hours:
    if not isinstance(raw, Mapping):
        raise _Unusable("contact_hours is not an object with from, to and days")
    opens = _clock(raw.get("from"), "contact_hours.from")
    closes = _clock(raw.get("to"), "contact_hours.to")
    days = raw.get("days")
    if not isinstance(days, list) or not all(isinstance(d, str) and d in DAYS for d in days):
        raise _Unusable(f"contact_hours.days must list days of {', '.join(DAYS)}")
    if not days:
        raise _Unusable("contact_hours.days names no day")
    return _Hours(opens, closes, frozenset(DAYS.index(d) for d in days))


def _clock(value: Any, field: str) -> time:
    match = _HH_MM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise _Unusable(f"{field} is not a time HH:MM: {str(value)[:20]!r}")
    return time(int(match[1]), int(match[2]))


def _windows(hours: _Hours, zone: tzinfo, today: date) -> list[tuple[datetime, datetime]]:
    """The windows around `today` (local) in UTC, in order, touching ones joined (a
    customer with 00:00-00:00 every day is never "closing at midnight")."""
    windows: list[tuple[datetime, datetime]] = []
    for offset in range(-_DAYS_BACK, _DAYS_AHEAD):
        day = today + timedelta(days=offset)
        if day.weekday() not in hours.days:
            continue
        closing_day = day + timedelta(days=1) if hours.closes <= hours.opens else day
        opens = datetime.combine(day, hours.opens, tzinfo=zone).astimezone(UTC)
        closes = datetime.combine(closing_day, hours.closes, tzinfo=zone).astimezone(UTC)
        if closes <= opens:  # a short window inside a skipped hour: the clock never shows it
            continue
        if windows and opens <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(closes, windows[-1][1]))
        else:
            windows.append((opens, closes))
    return windows


def _when_text(moment: datetime, zone: tzinfo, today: date) -> str:
    """A UTC instant on the customer's wall clock, relative to their today:
    "today 17:30", "tomorrow 09:00", "Thu 09:00", "Tue 8 Dec 09:00"."""
    local = moment.astimezone(zone)
    days = (local.date() - today).days
    clock = f"{local:%H:%M}"
    if days == 0:
        return f"today {clock}"
    if days == 1:
        return f"tomorrow {clock}"
    label = _DAY_LABELS[local.weekday()]
    if 1 < days < 7:
        return f"{label} {clock}"
    return f"{label} {local.day} {_MONTHS[local.month - 1]} {clock}"


def _abbreviation(local: datetime) -> str:
    """"GMT", "BST", "CET"; zones without a letter abbreviation name an offset ("-03"),
    written as "UTC-03"."""
    name = local.tzname() or ""
    return f"UTC{name}" if name[:1] in "+-" else name


def days_text(days: frozenset[int]) -> str:
    """"Mon-Fri", "Every day", "Mon, Wed, Fri", "Sat-Mon" (with en dashes; a run across
    the week's end is one run)."""
    if len(days) == 7:
        return "Every day"
    # Weeks are written from Monday, except that a weekend run into Monday (Sat, Sun,
    # Mon) stays one run: the week then starts after the first day not chosen.
    start = next(d for d in range(7) if d not in days) if {5, 6, 0} <= days else 0
    order = [(start + i) % 7 for i in range(7)]
    runs: list[list[int]] = []
    for day in order:
        if day not in days:
            continue
        if runs and runs[-1][-1] == (day - 1) % 7:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ", ".join(_DAY_LABELS[run[0]] if len(run) == 1
                     else f"{_DAY_LABELS[run[0]]}{EN_DASH}{_DAY_LABELS[run[-1]]}" for run in runs)
