"""kernel.times.parse_rfc3339, the one timestamp parser, as each of its callers uses it.

The callers' acceptance rules differ on purpose; these tests pin each one:
the validate stage (strict), the CLI/API time filters (lenient, offset required,
no lower-case 'z'), and stored-entry reading (lenient, offsetless taken as UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.contacts import parse_ms
from kernel.times import BadTime, epoch_ms, iso_datetime, iso_ms, parse_rfc3339, parse_time
from schemas.validate import INVALID_TIMESTAMP, _parse_occurred_at, _Rejected

NOON = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
NOON_MS = 1_795_348_800_000


def test_strict_reads_rfc3339_only() -> None:
    for text in ("2026-11-22T12:00:00Z", "2026-11-22t12:00:00z", "2026-11-22 12:00:00Z",
                 "2026-11-22T13:00:00.000+01:00", "2026-11-22T12:00:00.000000001Z"):
        assert parse_rfc3339(text, strict=True) == NOON, text
    for text in ("2026-11-22T12:00:00", "2026-W47-7T12:00:00Z", "2026-11-22T12:00Z",
                 "2026-13-01T00:00:00Z", " 2026-11-22T12:00:00Z", "20261122T120000Z"):
        with pytest.raises(ValueError):
            parse_rfc3339(text, strict=True)


def test_lenient_reads_what_fromisoformat_reads() -> None:
    assert parse_rfc3339("2026-W47-7T12:00Z") == NOON
    assert parse_rfc3339("2026-11-22T12:00:00z") == NOON
    assert parse_rfc3339("2026-11-22T12:00").tzinfo is None  # the caller decides
    with pytest.raises(ValueError):
        parse_rfc3339("2026-11-22T12:00:00z", lower_z=False)
    with pytest.raises(ValueError):
        parse_rfc3339("not a time")


def test_epoch_ms_is_exact_and_floored() -> None:
    assert epoch_ms(NOON) == NOON_MS
    assert epoch_ms(NOON + timedelta(microseconds=999)) == NOON_MS
    assert epoch_ms(datetime(1969, 12, 31, 23, 59, 59, 999_500, tzinfo=UTC)) == -1


def test_validate_stage_unchanged() -> None:
    assert _parse_occurred_at("2026-11-22t13:00:00+01:00") == NOON_MS
    cases = {
        "2026-11-22T12:00:00": "is not an RFC 3339 timestamp with offset (add 'Z' or '+hh:mm')",
        "2026-13-01T00:00:00Z": "is not an RFC 3339 timestamp with offset",
        "2026-W47-7T12:00:00Z": "is not an RFC 3339 timestamp with offset",
        "1969-12-31T23:59:59Z": "is before 1970-01-01T00:00:00Z",
        "9999-12-31T23:59:59-01:00": "is after 9999-12-31T23:59:59.999Z",
    }
    for text, ending in cases.items():
        with pytest.raises(_Rejected) as caught:
            _parse_occurred_at(text)
        rejection = caught.value.rejection
        assert rejection.reason == INVALID_TIMESTAMP
        assert rejection.message == f"occurred_at: {text!r} {ending}", text


def test_time_filters_unchanged() -> None:
    assert parse_time(" 2026-11-22T13:00:00+01:00 ") == NOON_MS
    assert parse_time("2026-W47-7T12:00Z") == NOON_MS  # fromisoformat's ISO 8601 forms
    assert parse_time("1h", now=NOON) == NOON_MS - 3_600_000
    with pytest.raises(BadTime, match="has no UTC offset"):
        parse_time("2026-11-22T12:00:00")
    with pytest.raises(BadTime, match="is neither an RFC 3339 timestamp"):
        parse_time("2026-11-22T12:00:00z")  # lower-case z: refused, as before


def test_stored_entries_unchanged() -> None:
    assert parse_ms("2026-11-22T12:00:00z") == NOON_MS
    assert parse_ms("2026-11-22T12:00:00") == NOON_MS  # no offset: taken as UTC
    assert parse_ms("2026-W47-7T12:00") == NOON_MS
    assert parse_ms("2026-11-22") == NOON_MS - 12 * 3_600_000
    assert parse_ms(" 2026-11-22T12:00:00Z") is None
    assert parse_ms(None) is None


def test_formatting() -> None:
    assert iso_ms(NOON_MS + 5) == "2026-11-22T12:00:00.005Z"
    assert iso_datetime(NOON.astimezone(timezone(timedelta(hours=1)))) == \
        "2026-11-22T12:00:00.000Z"
    assert iso_datetime(datetime(2026, 11, 22, 12)) == "2026-11-22T12:00:00.000Z"
