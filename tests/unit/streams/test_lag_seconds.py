"""The consumer lag in seconds (streams.runner.lag_seconds): pure, no services."""

from __future__ import annotations

from streams.runner import lag_seconds

A, B, C = ("cx.call.v1", 0), ("cx.call.v1", 1), ("cx.chat.v1", 0)


def test_nothing_left_is_zero_whatever_was_done_last() -> None:
    assert lag_seconds({A: 0}, {A: 1_000}, now_s=5_000.0) == {A: 0.0}


def test_work_left_is_the_age_of_the_newest_record_done() -> None:
    assert lag_seconds({A: 7, B: 1}, {A: 1_000_000, B: 1_009_500}, now_s=1_010.0) == {
        A: 10.0, B: 0.5}


def test_no_figure_before_the_first_record_done_and_no_negative_age() -> None:
    assert lag_seconds({A: 3, C: 2}, {C: 2_000_000}, now_s=1_000.0) == {C: 0.0}
    assert lag_seconds({B: 3}, {B: None}, now_s=1_000.0) == {}
