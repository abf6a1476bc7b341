"""Identity state (customer records and their claims, merges, entries in timelines and in
ambiguous profiles, alerts) stored straight into the real Redis, for the tests of
`cxt customers show|merge-preview`, their API routes and the agent page's "who is
calling" panel.

Stored through the store classes the worker uses (no mocks), so the CLI, the API and
the page read exactly what the worker would have written; the worker itself is not
needed to set it up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from kernel.settings import Settings
from schemas.validate import customer_identity_keys
from store.identities import ProfileChange
from store.stores import open_stores
from store.timeline import NewEntry
from tests.support.alert_data import iso, survey_alert


@dataclass
class Seed:
    """What to store: records (each claims its identifiers), merges (customer -> into),
    timeline entries and alerts."""

    records: list[dict] = field(default_factory=list)
    merges: list[tuple[str, str]] = field(default_factory=list)
    entries: list[dict] = field(default_factory=list)
    alerts: list[dict] = field(default_factory=list)


def record(customer_id: str, name: str | None = None, *, phones: Sequence[str] = (),
           emails: Sequence[str] = (), merged_into: str | None = None) -> dict:
    found: dict = {"customer_id": customer_id, "identifiers": {}}
    if name is not None:
        found["name"] = name
    if phones:
        found["identifiers"]["phones"] = list(phones)
    if emails:
        found["identifiers"]["emails"] = list(emails)
    if merged_into is not None:
        found["merged_into"] = merged_into
    return found


def entry(timeline: str, channel: str = "call", *, hours_ago: float = 1,
          event_type: str | None = None, agent_id: str = "A-007", **marks: object) -> dict:
    """A timeline entry stored in `timeline`; `marks` such as filed_under, linked_from,
    provisional, identity."""
    occurred = iso(datetime.now(UTC) - timedelta(hours=hours_ago))
    types = {"call": "call.started", "chat": "chat.started", "email": "email.received",
             "survey": "survey.response", "social": "social.post"}
    return {"event_id": uuid.uuid4().hex, "customer_id": timeline, "channel": channel,
            "type": event_type or types[channel], "occurred_at": occurred,
            "accepted_at": occurred, "payload": {"agent_id": agent_id, "intent": "billing"},
            "source": {"topic": f"cx.{channel}.v1", "partition": 0, "offset": 0}, **marks}


def alert(customer_id: str, *, status: str = "open", **marks: object) -> dict:
    return {**survey_alert(customer_id), "status": status, **marks}


def _ms(moment: str) -> int:
    return int(datetime.fromisoformat(moment).timestamp() * 1000)


async def _store(settings: Settings, seed: Seed) -> None:
    async with open_stores(settings) as stores:
        await stores.identities.apply_profiles([
            ProfileChange(r["customer_id"], r, claimed=tuple(customer_identity_keys(r)))
            for r in seed.records])
        for customer_id, into in seed.merges:
            await stores.identities.set_merge(customer_id, into)
        if seed.entries:
            await stores.timelines.add([
                NewEntry(e["customer_id"], e["event_id"], _ms(e["occurred_at"]),
                         orjson.dumps(e), e["source"], e)  # type: ignore[arg-type]
                for e in seed.entries])
        if seed.alerts:
            await stores.alerts.put_new(seed.alerts,  # type: ignore[arg-type]
                                        int(datetime.now(UTC).timestamp() * 1000),
                                        3_600_000)


def store(settings: Settings, seed: Seed) -> None:
    """Store `seed`, on a thread of its own (Playwright's sync API owns the test thread's
    event loop; plain tests may call it too)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _store(settings, seed)).result()


@dataclass(frozen=True)
class Household:
    """Two customers sharing a landline, one with a duplicate record merged into it:

    - `a` claims `phone` (shared with `b`) and `email_a`; `m` (a duplicate of `a`,
      claiming `email_m`) is merged into `a`, so its email entry and resolved alert are in
      `a`'s timeline, filed under `m`;
    - `a`'s timeline: a call and a chat of its own, the email filed under `m`, a call an
      agent confirmed from the ambiguous profile, a survey linked from a provisional one;
    - the ambiguous profile of the phone holds one call (`waiting`) for an agent to
      confirm; `b` has a chat of its own.
    """

    a: str
    b: str
    m: str
    phone: str
    email_a: str
    email_m: str
    profile: str  # "~?phone:..."
    provisional: str  # the provisional profile linked into a's timeline
    waiting: str  # event id of the call waiting in the ambiguous profile
    seed: Seed


def household(name_a: str = "Ada Lovelace", name_b: str = "Byron Lovelace") -> Household:
    tag = uuid.uuid4().hex[:8]
    digits = str(int(tag, 16) % 10**6).zfill(6)
    phone = f"+44770090{digits}"
    a, b, m = f"C-a-{tag}", f"C-b-{tag}", f"C-m-{tag}"
    email_a, email_m = f"ada.{tag}@example.org", f"ada.l.{tag}@example.org"
    profile, provisional = f"~?phone:{phone}", f"~email:old.{tag}@example.org"
    waiting = entry(profile, "call", hours_ago=0.1, identity={"phone": phone})
    seed = Seed(
        records=[record(a, name_a, phones=[phone], emails=[email_a]),
                 record(b, name_b, phones=[phone]),
                 record(m, "Ada L.", emails=[email_m], merged_into=a)],
        merges=[(m, a)],
        entries=[entry(a, "call", hours_ago=5), entry(a, "chat", hours_ago=4),
                 entry(a, "email", hours_ago=3, filed_under=m),
                 entry(a, "call", hours_ago=2, linked_from=profile),
                 entry(a, "survey", hours_ago=1, linked_from=provisional),
                 entry(b, "chat", hours_ago=2), waiting],
        alerts=[alert(a), alert(a, status="resolved", filed_under=m)])
    return Household(a, b, m, phone, email_a, email_m, profile, provisional,
                     waiting["event_id"], seed)
