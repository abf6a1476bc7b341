"""store.digest's order of the rows it reads: the timeline's own (score, then event id,
descending), whatever order the script found them in, each entry once; and the alerts it
reads, without their context entries."""

from __future__ import annotations

import orjson

from store.digest import Digest, in_order, without_context


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


def _alert(**fields: object) -> dict:
    # The key order of domain.alerts.new_alert: the head, the rated contact, the context
    # (entries whose payloads may hold any keys), then source and history.
    entry = {"event_id": "e1", "payload": {"ivr_path": ["billing"], "intent": "billing"},
             "source": {"topic": "t"}}
    return {"alert_id": "AL-1", "status": "open", "survey_event_id": "s1",
            "rated_contact": entry, "context": [entry, {"event_id": "e2", "payload": {}}],
            "source": {"topic": "t"}, "history": [{"event": "raised"}], **fields}


def test_an_alert_is_read_without_its_context_entries() -> None:
    alert = _alert()
    head = without_context(orjson.dumps(alert))
    assert head == {k: v for k, v in alert.items() if k != "context"}
    empty = _alert(context=[])
    assert without_context(orjson.dumps(empty)) == {k: v for k, v in empty.items()
                                                    if k != "context"}


def test_marks_inside_an_entry_make_the_alert_read_whole() -> None:
    # A payload list before a payload key "source": the cut would not balance.
    inside = _alert(context=[{"event_id": "e1", "payload": {"tags": ["a"], "source": "web"}}])
    # A payload key "context" (a list) before "source", inside the rated contact: the cut
    # balances, but leaves the alert's own context.
    nested = _alert(rated_contact={"event_id": "r", "payload": {"n": 1, "context": ["a"],
                                                                 "source": 1}})
    ahead = _alert(rated_contact={"event_id": "r", "payload": {"n": 1, "context": ["a"]}})
    no_source = {k: v for k, v in _alert().items() if k != "source"}
    for alert in (inside, nested, ahead, no_source):
        assert without_context(orjson.dumps(alert)) == alert
