"""Survey figures: buckets, counter fields, rows and tables (domain.survey_metrics)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from domain.survey_metrics import (
    MAX_DAYS,
    MAX_HOURS,
    MISSING,
    SEP,
    Row,
    aggregate,
    day_of,
    days_back,
    format_table,
    hour_of,
    hours_back,
    hours_of_day,
    metric_fields,
    period_label,
    rows_to_json,
    sum_counters,
    total_row,
)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def counters_for(surveys: list[tuple], scale: tuple[int, int] = (1, 5)) -> dict[str, int]:
    """What HINCRBY would leave in one bucket hash after these surveys."""
    total: dict[str, int] = {}
    for channel, queue, agent, score in surveys:
        for field, amount in metric_fields(channel, queue, agent, score, *scale).items():
            total[field] = total.get(field, 0) + amount
    return total


# --- buckets -------------------------------------------------------------------

def test_hour_of_is_the_utc_hour() -> None:
    assert hour_of(ms(datetime(2026, 11, 22, 10, 0, tzinfo=UTC))) == "2026112210"
    assert hour_of(ms(datetime(2026, 11, 22, 10, 59, 59, 999_000, tzinfo=UTC))) == "2026112210"
    assert hour_of(ms(datetime(2026, 11, 22, 11, 0, tzinfo=UTC))) == "2026112211"


def test_day_boundary() -> None:
    last_ms = ms(datetime(2026, 11, 22, 23, 59, 59, 999_000, tzinfo=UTC))
    assert hour_of(last_ms) == "2026112223"
    assert hour_of(last_ms + 1) == "2026112300"
    assert day_of(last_ms) == "20261122"
    assert day_of(last_ms + 1) == "20261123"
    # Year end too.
    assert hour_of(ms(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) + 3_600_000) == "2027010100"


def test_non_utc_offset_is_bucketed_in_utc() -> None:
    # 00:30 in New York (UTC-5) on the 23rd is 05:30 UTC on the 23rd;
    # 01:30 in Berlin (UTC+1) on the 23rd is 00:30 UTC, and 00:30 +02:00 is the 22nd in UTC.
    new_york = timezone(timedelta(hours=-5))
    berlin = timezone(timedelta(hours=1))
    athens = timezone(timedelta(hours=2))
    assert hour_of(ms(datetime(2026, 11, 23, 0, 30, tzinfo=new_york))) == "2026112305"
    assert hour_of(ms(datetime(2026, 11, 23, 1, 30, tzinfo=berlin))) == "2026112300"
    assert hour_of(ms(datetime(2026, 11, 23, 0, 30, tzinfo=athens))) == "2026112222"
    assert day_of(ms(datetime(2026, 11, 23, 0, 30, tzinfo=athens))) == "20261122"


def test_hours_back_ends_with_the_current_hour() -> None:
    now = datetime(2026, 11, 22, 1, 45, tzinfo=UTC)
    assert hours_back(now, 1) == ["2026112201"]
    assert hours_back(now, 3) == ["2026112123", "2026112200", "2026112201"]
    assert len(hours_back(now, 24)) == 24
    assert len(set(hours_back(now, 24 * 30))) == 24 * 30


def test_hours_back_converts_offsets_and_naive_times() -> None:
    # 02:10 at +02:00 is 00:10 UTC.
    local = datetime(2026, 11, 22, 2, 10, tzinfo=timezone(timedelta(hours=2)))
    assert hours_back(local, 2) == ["2026112123", "2026112200"]
    assert hours_back(datetime(2026, 11, 22, 0, 10), 1) == ["2026112200"]  # naive = UTC


def test_days_back_and_hours_of_day() -> None:
    now = datetime(2026, 3, 1, 0, 5, tzinfo=UTC)
    assert days_back(now, 3) == ["20260227", "20260228", "20260301"]
    assert days_back(now, 1) == ["20260301"]
    hours = hours_of_day("20261122")
    assert hours[0] == "2026112200"
    assert hours[-1] == "2026112223"
    assert len(hours) == 24


@pytest.mark.parametrize("bad", [0, -1])
def test_ranges_need_at_least_one(bad: int) -> None:
    with pytest.raises(ValueError, match="must be 1 to"):
        hours_back(datetime(2026, 1, 1, tzinfo=UTC), bad)
    with pytest.raises(ValueError, match="must be 1 to"):
        days_back(datetime(2026, 1, 1, tzinfo=UTC), bad)


@pytest.mark.parametrize("bad", [MAX_DAYS + 1, 99_999_999])
def test_ranges_are_capped_before_they_overflow_or_flood(bad: int) -> None:
    # 99,999,999 hours or days reach back before the year 1 (an OverflowError once).
    with pytest.raises(ValueError, match=f"must be 1 to {MAX_HOURS}"):
        hours_back(datetime(2026, 1, 1, tzinfo=UTC), bad + MAX_HOURS)
    with pytest.raises(ValueError, match=f"must be 1 to {MAX_DAYS}"):
        days_back(datetime(2026, 1, 1, tzinfo=UTC), bad)
    assert len(hours_back(datetime(2026, 1, 1, tzinfo=UTC), MAX_HOURS)) == 744
    assert len(days_back(datetime(2026, 1, 1, tzinfo=UTC), MAX_DAYS)) == 400


def test_hours_of_day_rejects_bad_ids() -> None:
    with pytest.raises(ValueError, match="YYYYMMDD"):
        hours_of_day("2026112")


def test_period_labels() -> None:
    assert period_label("2026112210") == "2026-11-22 10:00"
    assert period_label("20261122") == "2026-11-22"


# --- counter fields ----------------------------------------------------------

def metrics(score: int, low: int, high: int) -> dict[str, int]:
    fields = metric_fields("call", "billing-uk", "A-001", score, low, high)
    return {field.rsplit(SEP, 1)[1]: amount for field, amount in fields.items()}


@pytest.mark.parametrize(("low", "high", "bottom", "middle", "top"), [
    (1, 5, [1, 2], [3], [4, 5]),
    (0, 10, [0, 1], list(range(2, 9)), [9, 10]),
    (3, 7, [3, 4], [5], [6, 7]),
])
def test_box_edges(low: int, high: int, bottom: list[int], middle: list[int],
                   top: list[int]) -> None:
    for score in range(low, high + 1):
        got = metrics(score, low, high)
        assert got["n"] == 1
        assert got.get("b2", 0) == (score in bottom), (score, low, high)
        assert got.get("t2", 0) == (score in top), (score, low, high)
        assert score in bottom + middle + top


def test_sum_and_normalised_score() -> None:
    assert metrics(4, 1, 5)["sum"] == 4
    assert metrics(4, 1, 5)["norm"] == 7500
    assert metrics(5, 1, 5)["norm"] == 10_000
    assert "norm" not in metrics(1, 1, 5)  # zero increments are left out
    assert metrics(7, 0, 10)["norm"] == 7000
    assert metrics(5, 3, 7)["norm"] == 5000
    assert metrics(2, 1, 4)["norm"] == 3333  # rounded to 1/10000


def test_field_names_and_missing_dimensions() -> None:
    fields = metric_fields("call", None, "", 2, 1, 5)
    assert set(fields) == {f"call{SEP}{MISSING}{SEP}{MISSING}{SEP}{m}"
                           for m in ("n", "b2", "sum", "norm")}
    # A separator inside a value must not shift the other parts of the name.
    odd = metric_fields("chat", f"a{SEP}b", "A-1", 3, 1, 5)
    assert all(len(field.split(SEP)) == 4 for field in odd)


def test_bad_scale_is_refused() -> None:
    with pytest.raises(ValueError, match="scale_min"):
        metric_fields("call", "q", "a", 1, 5, 5)


# --- aggregate -----------------------------------------------------------------

SURVEYS = [
    ("call", "billing-uk", "A-001", 1),
    ("call", "billing-uk", "A-002", 5),
    ("call", "tech-uk", "A-001", 2),
    ("chat", "billing-chat", "A-001", 4),
    ("chat", None, "A-003", 3),
    ("call", "billing-uk", "A-001", 4),
]


def test_aggregate_all() -> None:
    row = aggregate("2026-11-22 10:00", counters_for(SURVEYS))
    assert row == Row("2026-11-22 10:00", responses=6, bottom2=2, bottom2_share=2 / 6, top2=3,
                      top2_share=3 / 6, mean_score=19 / 6,
                      mean_norm=pytest.approx((0 + 1 + 0.25 + 0.75 + 0.5 + 0.75) / 6))


@pytest.mark.parametrize(("filters", "responses", "bottom2", "top2", "mean"), [
    ({"channel": "call"}, 4, 2, 2, 3.0),
    ({"channel": "chat"}, 2, 0, 1, 3.5),
    ({"queue": "billing-uk"}, 3, 1, 2, 10 / 3),
    ({"agent": "A-001"}, 4, 2, 2, 11 / 4),
    ({"channel": "call", "agent": "A-001"}, 3, 2, 1, 7 / 3),
    ({"channel": "call", "queue": "billing-uk", "agent": "A-001"}, 2, 1, 1, 2.5),
    ({"queue": MISSING}, 1, 0, 0, 3.0),  # surveys that named no queue
])
def test_aggregate_with_filters(filters: dict, responses: int, bottom2: int, top2: int,
                                mean: float) -> None:
    row = aggregate("p", counters_for(SURVEYS), **filters)
    assert (row.responses, row.bottom2, row.top2) == (responses, bottom2, top2)
    assert row.bottom2_share == pytest.approx(bottom2 / responses)
    assert row.top2_share == pytest.approx(top2 / responses)
    assert row.mean_score == pytest.approx(mean)


def test_aggregate_reads_redis_bytes_and_strings() -> None:
    counters = counters_for(SURVEYS)
    as_bytes = {field.encode(): str(value).encode() for field, value in counters.items()}
    as_text = {field: str(value) for field, value in counters.items()}
    expected = aggregate("p", counters, agent="A-001")
    assert aggregate("p", as_bytes, agent="A-001") == expected
    assert aggregate("p", as_text, agent="A-001") == expected


def test_aggregate_ignores_other_fields() -> None:
    counters = counters_for(SURVEYS) | {"updated_at": 5, f"a{SEP}b{SEP}c{SEP}bogus": 9}
    assert aggregate("p", counters).responses == 6


def test_empty_period_and_no_match() -> None:
    empty = aggregate("2026-11-22 03:00", {})
    assert empty == Row("2026-11-22 03:00", 0, 0, None, 0, None, None, None)
    assert aggregate("p", counters_for(SURVEYS), agent="A-999").responses == 0


def test_mixed_scales_mean_norm() -> None:
    counters = counters_for([("call", "q", "a", 1)], (1, 5))  # 0.0 of its scale
    for field, amount in counters_for([("call", "q", "a", 10)], (0, 10)).items():
        counters[field] = counters.get(field, 0) + amount
    row = aggregate("p", counters)
    assert row.mean_norm == pytest.approx(0.5)
    assert (row.bottom2, row.top2) == (1, 1)


def test_sum_counters_adds_hours_into_a_day() -> None:
    early = counters_for(SURVEYS[:3])
    late = {k.encode(): str(v).encode() for k, v in counters_for(SURVEYS[3:]).items()}
    assert aggregate("day", sum_counters([early, late])) == aggregate("day",
                                                                      counters_for(SURVEYS))


# --- output --------------------------------------------------------------------

def test_total_row_weights_means() -> None:
    rows = [aggregate("a", counters_for(SURVEYS[:2])), aggregate("b", {}),
            aggregate("c", counters_for(SURVEYS[2:]))]
    total = total_row(rows)
    whole = aggregate("total", counters_for(SURVEYS))
    assert (total.responses, total.bottom2, total.top2) == (6, 2, 3)
    assert total.mean_score == pytest.approx(whole.mean_score)
    assert total.mean_norm == pytest.approx(whole.mean_norm)
    assert total_row([]).bottom2_share is None


def test_format_table() -> None:
    rows = [aggregate("2026-11-22 10:00", counters_for(SURVEYS)),
            aggregate("2026-11-22 11:00", {}),
            aggregate("2026-11-22 12:00", counters_for(SURVEYS[:1]))]
    text = format_table(rows, "Survey responses by hour (UTC)")
    lines = text.splitlines()
    assert lines[0] == "Survey responses by hour (UTC)"
    assert "responses" in lines[1]
    assert "bottom-2" in lines[1]
    assert "top-2" in lines[1]
    assert lines[3].split() == ["2026-11-22", "10:00", "6", "2", "33.3%", "3", "50.0%",
                                "3.17", "0.542"]
    assert lines[4].split() == ["2026-11-22", "11:00", "0", "0", "-", "0", "-", "-", "-"]
    assert lines[-1].split()[:6] == ["total", "7", "3", "42.9%", "3", "42.9%"]
    # Columns line up: every line but the title is as wide as the header or narrower.
    assert len({len(line) for line in lines[1:3]}) == 1


def test_format_table_empty() -> None:
    text = format_table([], "nothing")
    assert text.splitlines()[-1].split() == ["total", "0", "0", "-", "0", "-", "-", "-"]


def test_rows_to_json() -> None:
    rows = [aggregate("2026-11-22", counters_for(SURVEYS)), aggregate("2026-11-23", {})]
    data = rows_to_json(rows)
    assert data[0] == {"period": "2026-11-22", "responses": 6, "bottom2": 2,
                       "bottom2_share": 0.3333, "top2": 3, "top2_share": 0.5,
                       "mean_score": 3.167, "mean_norm": 0.5417}
    assert data[1]["bottom2_share"] is None
    assert data[1]["mean_score"] is None
