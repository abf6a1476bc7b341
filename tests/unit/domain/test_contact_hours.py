"""domain.contact_hours: the customer's hours on their own wall clock, across clock
changes and midnight, and "no preference" (with the reason) for anything unusable."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.contact_hours import (
    INSIDE,
    NO_PREFERENCE,
    OUTSIDE,
    ContactHoursNow,
    contact_hours_now,
    days_text,
)

WEEKDAYS = ["mon", "tue", "wed", "thu", "fri"]


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now(hours: dict | None, zone: str | None, when: str) -> ContactHoursNow:
    return contact_hours_now({"contact_hours": hours, "time_zone": zone}, _at(when))


def _office(days: list[str] = WEEKDAYS) -> dict:
    return {"from": "09:00", "to": "17:30", "days": days}


def test_inside_office_hours_in_winter_says_when_they_close() -> None:
    now = _now(_office(), "Europe/London", "2026-12-01T10:00:00Z")  # a Tuesday, GMT
    assert now.status == INSIDE and now.inside is True
    assert now.local_time == "2026-12-01T10:00:00+00:00"
    assert now.local_text == "Tue 10:00 GMT"
    assert now.hours_text == "Mon\u2013Fri 09:00\u201317:30 Europe/London"
    assert now.closes_at == "2026-12-01T17:30:00.000Z" and now.closes_text == "today 17:30"
    assert now.next_window_at is None and now.reason is None


def test_summer_time_moves_the_window_an_hour_earlier_in_utc() -> None:
    # 08:30 UTC is 09:30 BST: inside, though it would be outside in winter.
    now = _now(_office(), "Europe/London", "2026-07-01T08:30:00Z")
    assert now.status == INSIDE and now.local_text == "Wed 09:30 BST"
    assert now.closes_at == "2026-07-01T16:30:00.000Z"
    assert _now(_office(), "Europe/London", "2026-12-02T08:30:00Z").status == OUTSIDE


def test_after_hours_on_friday_the_next_window_is_monday() -> None:
    now = _now(_office(), "Europe/London", "2026-12-04T18:00:00Z")
    assert now.status == OUTSIDE and now.inside is False
    assert now.next_window_at == "2026-12-07T09:00:00.000Z"
    assert now.next_window_text == "Mon 09:00"
    evening = _now(_office(), "Europe/London", "2026-12-01T18:00:00Z")
    assert evening.next_window_text == "tomorrow 09:00"
    morning = _now(_office(), "Europe/London", "2026-12-01T07:00:00Z")
    assert morning.next_window_text == "today 09:00"


def test_a_window_a_week_away_names_its_date() -> None:
    now = _now(_office(["tue"]), "Europe/London", "2026-12-01T18:00:00Z")
    assert now.next_window_text == "Tue 8 Dec 09:00"
    assert now.hours_text == "Tue 09:00\u201317:30 Europe/London"


def test_spring_forward_day_window_opens_at_the_local_clock() -> None:
    # Europe/London goes from GMT to BST at 01:00 UTC on Sunday 29 March 2026.
    sunday = _office(["sat", "sun"])
    saturday = _now(sunday, "Europe/London", "2026-03-28T08:30:00Z")
    assert saturday.status == OUTSIDE and saturday.next_window_at == "2026-03-28T09:00:00.000Z"
    changed = _now(sunday, "Europe/London", "2026-03-29T08:30:00Z")  # 09:30 BST
    assert changed.status == INSIDE and changed.local_text == "Sun 09:30 BST"
    assert changed.closes_at == "2026-03-29T16:30:00.000Z"
    # Seen on Saturday evening, Sunday's window opens at 08:00 UTC.
    evening = _now(sunday, "Europe/London", "2026-03-28T20:00:00Z")
    assert evening.next_window_at == "2026-03-29T08:00:00.000Z"
    assert evening.next_window_text == "tomorrow 09:00"


def test_an_overnight_window_across_the_spring_change_is_an_hour_shorter() -> None:
    overnight = {"from": "22:00", "to": "06:00", "days": ["sat"]}
    assert _now(overnight, "Europe/London", "2026-03-29T04:59:00Z").status == INSIDE
    late = _now(overnight, "Europe/London", "2026-03-29T05:00:00Z")  # 06:00 BST
    assert late.status == OUTSIDE and late.next_window_text == "Sat 22:00"


def test_fall_back_day_window_is_an_hour_longer() -> None:
    # Europe/London goes from BST back to GMT at 01:00 UTC on Sunday 25 October 2026:
    # 00:00-03:00 local is 23:00 UTC Saturday to 03:00 UTC, four hours.
    small_hours = {"from": "00:00", "to": "03:00", "days": ["sun"]}
    assert _now(small_hours, "Europe/London", "2026-10-24T22:59:00Z").status == OUTSIDE
    assert _now(small_hours, "Europe/London", "2026-10-24T23:00:00Z").status == INSIDE
    inside = _now(small_hours, "Europe/London", "2026-10-25T02:30:00Z")
    assert inside.status == INSIDE and inside.local_text == "Sun 02:30 GMT"
    assert inside.closes_at == "2026-10-25T03:00:00.000Z"


def test_new_york_changes_on_its_own_day() -> None:
    # America/New_York springs forward on 8 March 2026, three weeks before London.
    hours = _office(["mon"])
    assert _now(hours, "America/New_York", "2026-03-09T13:30:00Z").status == INSIDE  # 09:30 EDT
    assert _now(hours, "America/New_York", "2026-03-02T13:30:00Z").status == OUTSIDE  # 08:30 EST


def test_a_window_past_midnight_runs_into_the_next_day() -> None:
    night = {"from": "22:00", "to": "06:00", "days": ["fri"]}
    friday_evening = _now(night, "Europe/Warsaw", "2026-12-04T20:00:00Z")  # 21:00 CET
    assert friday_evening.status == OUTSIDE and friday_evening.next_window_text == "today 22:00"
    saturday_night = _now(night, "Europe/Warsaw", "2026-12-05T02:00:00Z")  # Sat 03:00
    assert saturday_night.status == INSIDE and saturday_night.closes_text == "today 06:00"
    assert saturday_night.closes_at == "2026-12-05T05:00:00.000Z"
    friday_night = _now(night, "Europe/Warsaw", "2026-12-04T22:00:00Z")  # Fri 23:00
    assert friday_night.closes_text == "tomorrow 06:00"
    # The window started Friday only: Sunday morning is outside.
    assert _now(night, "Europe/Warsaw", "2026-12-06T02:00:00Z").status == OUTSIDE
    assert friday_night.hours_text == "Fri 22:00\u201306:00 Europe/Warsaw"


def test_touching_windows_close_once() -> None:
    nights = {"from": "18:00", "to": "18:00", "days": ["mon", "tue"]}  # Mon 18:00 - Wed 18:00
    now = _now(nights, "UTC", "2026-11-30T20:00:00Z")
    assert now.status == INSIDE and now.closes_at == "2026-12-02T18:00:00.000Z"
    always = _now({"from": "00:00", "to": "00:00", "days": [
        "mon", "tue", "wed", "thu", "fri", "sat", "sun"]}, "Asia/Tokyo", "2026-12-01T12:00:00Z")
    assert always.status == INSIDE and always.closes_at is None
    assert always.hours_text == "Every day, any time Asia/Tokyo"


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "Europe/", 42])
def test_an_unknown_zone_is_no_preference_with_a_reason(zone: object) -> None:
    now = contact_hours_now({"contact_hours": _office(), "time_zone": zone},
                            _at("2026-12-01T10:00:00Z"))
    assert now.status == NO_PREFERENCE and now.inside is None
    assert now.reason is not None
    assert "time zone" in now.reason or "time_zone" in now.reason, now.reason
    assert now.local_time is None and now.hours_text is None


def test_no_hours_is_no_preference_but_the_local_time_is_known() -> None:
    now = _now(None, "America/Sao_Paulo", "2026-12-01T12:00:00Z")
    assert now.status == NO_PREFERENCE and now.reason == "no contact hours set"
    assert now.local_text == "Tue 09:00 UTC-03"  # a zone without a letter abbreviation
    assert now.time_zone == "America/Sao_Paulo"
    nothing = contact_hours_now(None, _at("2026-12-01T12:00:00Z"))
    assert nothing.status == NO_PREFERENCE and nothing.reason == "no preferences set"
    assert nothing.as_json()["inside"] is None


def test_hours_without_a_zone_are_read_as_utc_and_say_so() -> None:
    now = _now(_office(), None, "2026-12-01T09:15:00Z")
    assert now.status == INSIDE and now.time_zone == "UTC"
    assert now.reason == "no time zone set: the hours are read as UTC"
    assert now.hours_text == "Mon\u2013Fri 09:00\u201317:30 UTC"


@pytest.mark.parametrize(("hours", "field"), [
    ({"from": "9:00", "to": "17:00", "days": ["mon"]}, "contact_hours.from"),
    ({"from": "09:00", "to": "24:00", "days": ["mon"]}, "contact_hours.to"),
    ({"from": "09:00", "to": "17:00", "days": ["monday"]}, "contact_hours.days"),
    ({"from": "09:00", "to": "17:00", "days": []}, "contact_hours.days"),
    ({"from": "09:00", "to": "17:00"}, "contact_hours.days"),
    ("9-5", "contact_hours"),
])
def test_malformed_hours_name_the_field(hours: object, field: str) -> None:
    now = contact_hours_now({"contact_hours": hours, "time_zone": "Europe/London"},
                            _at("2026-12-01T10:00:00Z"))
    assert now.status == NO_PREFERENCE and now.reason is not None
    assert now.reason.startswith(field), now.reason
    assert now.local_text == "Tue 10:00 GMT"


def test_a_naive_instant_is_utc() -> None:
    assert _now(_office(), "Europe/London", "2026-12-01T10:00:00").status == INSIDE


def test_days_text() -> None:
    assert days_text(frozenset(range(5))) == "Mon\u2013Fri"
    assert days_text(frozenset(range(7))) == "Every day"
    assert days_text(frozenset({0, 2, 4})) == "Mon, Wed, Fri"
    assert days_text(frozenset({5, 6})) == "Sat\u2013Sun"
    assert days_text(frozenset({5, 6, 0})) == "Sat\u2013Mon"
    assert days_text(frozenset({0, 2, 4, 6})) == "Mon, Wed, Fri, Sun"


def test_as_json_has_every_field() -> None:
    body = _now(_office(), "Europe/London", "2026-12-01T18:00:00Z").as_json()
    assert set(body) == {"status", "inside", "time_zone", "local_time", "local_text",
                         "hours_text", "closes_at", "closes_text", "next_window_at",
                         "next_window_text", "reason"}
    assert body["status"] == OUTSIDE and body["inside"] is False
    assert datetime.fromisoformat(body["next_window_at"].replace("Z", "+00:00")).tzinfo == UTC
