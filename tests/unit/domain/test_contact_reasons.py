"""Contact-reason counter fields and rows (domain.contact_reasons), no Redis."""

from __future__ import annotations

import pytest

from domain.contact_reasons import (
    NEGATIVE_ALERTS,
    aggregate,
    dimensions,
    format_table,
    rows_to_json,
    split_field,
    total_row,
)

HOUR_MS = 3_600_000
T0 = 1_764_000_000_000 // HOUR_MS * HOUR_MS  # the start of a UTC hour


def test_dimensions_round_trip_even_with_the_separator_inside() -> None:
    name = "c|" + dimensions("chat", "vip|uk", "Billing %7C ")
    assert split_field(name) == ("c", "chat", "vip|uk", "billing %7c")
    assert split_field("c|" + dimensions("call", None, None)) == ("c", "call", "", "")
    assert split_field("n|" + dimensions("social", "a%7Cb%25|", " ")) == \
        ("n", "social", "a%7Cb%25|", "")


@pytest.mark.parametrize("name", ["x|a|b|c", "c|a|b", "c|a|b|c|d", NEGATIVE_ALERTS, "n"])
def test_other_fields_are_not_counter_fields(name: str) -> None:
    assert split_field(name) is None


def _counters() -> dict[str, int]:
    return {
        "c|" + dimensions("call", "billing-uk", "billing"): 6,
        "r|" + dimensions("call", "billing-uk", "billing"): 3,
        "n|" + dimensions("call", "billing-uk", "billing"): 2,
        "c|" + dimensions("chat", "billing-chat", "billing"): 2,
        "n|" + dimensions("chat", "billing-chat", "billing"): 1,
        "c|" + dimensions("call", "tech-uk", "technical"): 4,
        "c|" + dimensions("email", None, None): 1,
        NEGATIVE_ALERTS: 5,
        "something else": 99,
    }


def test_a_row_sums_intents_and_keeps_them_apart() -> None:
    row = aggregate("2026-11-22 10:00", _counters())
    assert (row.contacts, row.repeat, row.negative, row.negative_alerts) == (13, 3, 3, 5)
    assert [(r.intent, r.contacts, r.repeat, r.negative) for r in row.by_intent] == [
        ("billing", 8, 3, 3), ("technical", 4, 0, 0), ("-", 1, 0, 0)]
    assert row.by_intent[0].repeat_rate == pytest.approx(3 / 8)
    assert row.negative_share == pytest.approx(3 / 13)


def test_filters_by_channel_queue_and_intent() -> None:
    assert aggregate("p", _counters(), channel="chat").contacts == 2
    assert aggregate("p", _counters(), queue="tech-uk").contacts == 4
    assert aggregate("p", _counters(), intent=" BILLING ").contacts == 8
    assert aggregate("p", _counters(), channel="call", intent="billing").negative == 2
    # "-" selects the contacts that named none.
    assert aggregate("p", _counters(), queue="-").contacts == 1
    assert aggregate("p", _counters(), intent="-").by_intent[0].intent == "-"
    assert aggregate("p", _counters(), queue="nowhere").contacts == 0
    # Alerts are not broken down, so every row carries them whatever the filters.
    assert aggregate("p", _counters(), queue="nowhere").negative_alerts == 5


def test_bytes_fields_as_redis_returns_them() -> None:
    raw = {k.encode(): str(v).encode() for k, v in _counters().items()}
    assert aggregate("p", raw) == aggregate("p", _counters())


def test_empty_rows_have_no_rates_and_json_rounds() -> None:
    empty = aggregate("2026-11-22", {})
    assert (empty.contacts, empty.repeat_rate, empty.negative_share) == (0, None, None)
    [as_json] = rows_to_json([aggregate("p", _counters())])
    assert set(as_json) == {"period", "contacts", "repeat", "repeat_rate", "negative",
                            "negative_share", "negative_alerts", "by_intent"}
    assert as_json["repeat_rate"] == round(3 / 13, 4)
    assert as_json["by_intent"][0] == {"intent": "billing", "contacts": 8, "repeat": 3,
                                       "repeat_rate": 0.375, "negative": 3,
                                       "negative_share": 0.375}
    assert rows_to_json([empty])[0]["repeat_rate"] is None


def test_total_and_table() -> None:
    rows = [aggregate("2026-11-22 10:00", _counters()), aggregate("2026-11-22 11:00", {})]
    total = total_row(rows)
    assert (total.contacts, total.negative_alerts) == (13, 5)
    assert total.by_intent[0].intent == "billing"
    table = format_table(rows, "Contacts")
    lines = table.splitlines()
    assert lines[0] == "Contacts"
    assert any(line.startswith("2026-11-22 10:00  (all)") for line in lines)
    assert lines[-4].startswith("total")
    assert "37.5%" in table  # billing's repeat rate
