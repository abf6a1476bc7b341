"""The benchmark's event stream keeps surveys linked to the contacts they rate."""

from __future__ import annotations

from bench.harness import iter_events
from cxt.traffic import TrafficGenerator, make_customers
from domain.rated import contact_ids


def test_renamed_surveys_still_name_an_earlier_contact() -> None:
    generator = TrafficGenerator(make_customers(50, seed=5), seed=5)
    seen: set[str] = set()
    named = linked = 0
    for channel, event in iter_events(3000, generator, "0000abcd"):
        payload = event["payload"]
        if channel == "survey" and payload.get("contact_id"):
            named += 1
            linked += payload["contact_id"] in seen
        seen.add(event["event_id"])
        seen.update(contact_ids({"channel": channel, "payload": payload}))
    assert named > 20
    # The generator rates contacts it sent before, so the renaming must keep every link.
    assert linked == named
