"""Which timeline entries push a context to an agent: contacts reaching them now, not old
ones that identity moved and the worker published again (dashboard.live)."""

from __future__ import annotations

from dashboard.live import REPUBLISHED_AFTER_MS, is_new_contact

ACCEPTED = "2026-11-22T10:00:00.000Z"
ACCEPTED_MS = 1_795_341_600_000


def test_a_fresh_contact_pushes_and_a_moved_one_does_not() -> None:
    fresh = {"type": "call.started", "accepted_at": ACCEPTED}
    assert is_new_contact(fresh, ACCEPTED_MS + 300)
    assert is_new_contact({"type": "call.started"}, ACCEPTED_MS)  # nothing to judge by
    assert is_new_contact(fresh, None)
    # A new call of a customer merged into another: filed under the root, still new.
    assert is_new_contact({**fresh, "filed_under": "C-1"}, ACCEPTED_MS + 300)
    # Confirmed out of an ambiguous profile, or linked from a provisional one: moved.
    assert not is_new_contact({**fresh, "linked_from": "~?phone:+44"}, ACCEPTED_MS + 300)
    # Moved by a merge long after it was accepted.
    assert not is_new_contact({**fresh, "filed_under": "C-1"},
                              ACCEPTED_MS + REPUBLISHED_AFTER_MS + 1)
