"""store.digest's order of the rows it reads: the timeline's own (score, then event id,
descending), whatever order the script found them in, each entry once."""

from __future__ import annotations

from store.digest import Digest, in_order


def _row(score: float, event_id: str) -> tuple[float, bytes, dict]:
    return score, event_id.encode(), {"event_id": event_id}


def test_rows_come_newest_first_with_ties_by_event_id_descending() -> None:
    rows = [_row(1, "a"), _row(3, "b"), _row(2, "z"), _row(2, "c"), _row(3, "a")]
    assert [(s, e.decode()) for s, e, _ in in_order(rows)] == [
        (3, "b"), (3, "a"), (2, "z"), (2, "c"), (1, "a")]


def test_rows_read_later_are_merged_in_place_once() -> None:
    digest = Digest(in_order([_row(5, "e5"), _row(1, "e1")]), total=9, whole=False)
    merged = digest.with_rows([_row(3, "e3"), _row(1, "e1"), _row(0, "e0")])
    assert [e["event_id"] for e in merged.entries] == ["e5", "e3", "e1", "e0"]
    assert (merged.total, merged.whole) == (9, False)
