"""The early-warning figure (domain.early_warning) from alerts, no Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from domain.early_warning import early_warning, format_text, percentile
from kernel.times import iso_datetime

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def _alert(alert_id: str, kind: str, customer: str, seconds: float, **more: object) -> dict:
    return {"alert_id": alert_id, "kind": kind, "customer_id": customer,
            "raised_at": iso_datetime(T0 + timedelta(seconds=seconds)), **more}


def test_counts_customers_warned_before_their_first_bottom_2_box() -> None:
    alerts = [
        _alert("N1", "negative_interaction", "C-1", 0),
        _alert("B1", "bottom_2_box", "C-1", 120),
        _alert("B1b", "bottom_2_box", "C-1", 900),  # a second survey: the first counts
        _alert("B2", "bottom_2_box", "C-2", 50),  # no warning at all
        _alert("B3", "bottom_2_box", "C-3", 10),
        _alert("N3", "negative_interaction", "C-3", 40),  # after the survey: too late
        _alert("N4", "negative_interaction", "C-4", 0),  # never gave a survey
        _alert("N5", "negative_interaction", "C-5", 0),
        _alert("B5", "bottom_2_box", "C-5", 30),
    ]
    figure = early_warning(alerts)
    assert figure.customers_with_bottom_2_box == 4
    assert figure.of_which_alerted_first == 2
    assert figure.share == 0.5
    assert figure.lead_seconds == [30.0, 120.0]
    assert figure.to_json() == {
        "customers_with_bottom_2_box": 4, "of_which_alerted_first": 2, "share": 0.5,
        "lead_seconds": {"median": 75.0, "p90": 111.0}}


def test_the_linked_alert_is_the_warning_else_the_latest_before() -> None:
    older, newer = (_alert("N-old", "negative_interaction", "C-1", 0),
                    _alert("N-new", "negative_interaction", "C-1", 100))
    assert early_warning([older, newer, _alert("B", "bottom_2_box", "C-1", 160)]
                         ).lead_seconds == [60.0]
    linked = _alert("B", "bottom_2_box", "C-1", 160, linked_alert_id="N-old")
    assert early_warning([older, newer, linked]).lead_seconds == [160.0]


def test_a_warning_older_than_the_window_does_not_count() -> None:
    alerts = [_alert("N", "negative_interaction", "C-1", 0),
              _alert("B", "bottom_2_box", "C-1", 3600)]
    assert early_warning(alerts, window_s=3599).of_which_alerted_first == 0
    assert early_warning(alerts, window_s=3600).of_which_alerted_first == 1


def test_unreadable_alerts_are_skipped_and_nothing_gives_nones() -> None:
    alerts = [{"kind": "bottom_2_box", "customer_id": "C-1", "raised_at": "yesterday"},
              {"kind": "bottom_2_box", "raised_at": iso_datetime(T0)},
              {"kind": "bottom_2_box", "customer_id": "C-1", "raised_at": "2026-11-22T10:00"}]
    figure = early_warning(alerts)
    assert figure.customers_with_bottom_2_box == 0
    assert figure.to_json()["share"] is None
    assert figure.to_json()["lead_seconds"] == {"median": None, "p90": None}
    assert "customers with a bottom-2-box survey" in format_text(figure, 3)


def test_alerts_without_a_kind_are_bottom_2_box() -> None:
    alerts = [_alert("N", "negative_interaction", "C-1", 0),
              {k: v for k, v in _alert("B", "", "C-1", 5).items() if k != "kind"}]
    assert early_warning(alerts).of_which_alerted_first == 1


@pytest.mark.parametrize(("values", "q", "expected"), [
    ([], 0.9, None), ([4.0], 0.9, 4.0), ([0.0, 10.0], 0.9, 9.0),
    ([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0], 0.9, 10.0),
])
def test_percentile(values: list[float], q: float, expected: float | None) -> None:
    assert percentile(values, q) == expected
