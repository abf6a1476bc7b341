"""`cxt customers show ID` and `cxt customers erase ID`.

show: what this deployment holds about a customer: the CRM record, whether
each of its identifiers resolves to it, the provisional profiles whose entries
were linked into its timeline, and its alerts.

erase: publishes the null record on cx.customers.v1 (key = customer id), the
contract's erasure; the worker then deletes the customer's data and publishes
tombstones downstream.  The command waits until the worker has done so.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO

from cxt.produce import make_producer, start_producer
from kernel.redis_client import connect
from kernel.settings import Settings
from schemas.validate import customer_identity_keys
from store.alerts import AlertStore
from store.keys import Keys, provisional_id
from store.timeline import CustomerOverview, TimelineStore

ERASE_TIMEOUT_S = 15.0
# schemas/customer.v1.json's customer_id: what the worker accepts as a tombstone key.
_CUSTOMER_ID = re.compile(r"^[^~}\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,127}$")


class CustomerCommandError(Exception):
    """Printed as one line; the command exits 1."""


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    overview: CustomerOverview
    identifiers: list[tuple[str, str | None]]  # identifier key -> who it resolves to
    waiting: list[str]  # provisional profiles of its identifiers not linked yet
    alerts: list[dict]

    @property
    def known(self) -> bool:
        return bool(self.overview.record or self.overview.entries or self.alerts)


def check_customer_id(customer_id: str) -> str:
    if not _CUSTOMER_ID.match(customer_id):
        raise CustomerCommandError(
            f"{customer_id[:60]!r} is not a customer id (1-128 characters, no control "
            "characters, not starting with '~' or '}')")
    return customer_id


@asynccontextmanager
async def _stores(settings: Settings) -> AsyncIterator[tuple[TimelineStore, AlertStore]]:
    redis = connect(settings.redis_url, cluster=settings.redis_cluster)
    keys = Keys(settings.redis_prefix)
    try:
        yield (TimelineStore(redis, keys, max_entries=settings.timeline_max_entries,
                             max_age_days=settings.timeline_max_age_days),
               AlertStore(redis, keys, counters_ttl_days=settings.timeline_max_age_days))
    finally:
        await redis.aclose()


async def view_customer(settings: Settings, customer_id: str) -> CustomerView:
    check_customer_id(customer_id)
    async with _stores(settings) as (store, alerts):
        return await _view(store, alerts, customer_id)


async def _view(store: TimelineStore, alerts: AlertStore, customer_id: str) -> CustomerView:
    overview = await store.overview(customer_id)
    keys = customer_identity_keys(overview.record) if overview.record else []
    owners = await store.lookup(keys)
    pending = [provisional_id(key) for key in keys]
    exists = await store.exists_many(pending) if pending else []
    return CustomerView(customer_id, overview, list(zip(keys, owners, strict=True)),
                        [pid for pid, there in zip(pending, exists, strict=True) if there],
                        await alerts.of_customer(customer_id))


async def erase_customer(settings: Settings, customer_id: str) -> bool:
    """Publish the null record; True once the worker erased what was stored (False when
    there was nothing stored here to wait for)."""
    check_customer_id(customer_id)
    async with _stores(settings) as (store, alerts):
        was_known = (await _view(store, alerts, customer_id)).known
        producer = await start_producer(make_producer(settings))
        try:
            await producer.send_and_wait(settings.topics.customers, None,
                                         key=customer_id.encode())
        finally:
            await producer.stop()
        if was_known:
            await _wait_erased(store, alerts, customer_id)
    return was_known


async def _wait_erased(store: TimelineStore, alerts: AlertStore, customer_id: str) -> None:
    deadline = time.monotonic() + ERASE_TIMEOUT_S
    while time.monotonic() < deadline:
        if not (await _view(store, alerts, customer_id)).known:
            return
        await asyncio.sleep(0.2)
    raise CustomerCommandError(
        f"the erasure of {customer_id} was published on the customers topic, but no worker "
        f"applied it within {ERASE_TIMEOUT_S:.0f} s; is `cxt worker` running?")


def confirm_erase(customer_id: str, view: CustomerView, *, assume_yes: bool,
                  stdin: TextIO = sys.stdin, out: TextIO = sys.stderr) -> bool:
    """Ask before an erasure that cannot be undone; refuse when nobody can answer."""
    if assume_yes:
        return True
    if not stdin.isatty():
        raise CustomerCommandError(f"not erasing {customer_id}: standard input is not a "
                                   "terminal to confirm on; pass --yes to erase without asking")
    held = (f"its record, {view.overview.entries} timeline entries and {len(view.alerts)} "
            "alert(s)" if view.known else "nothing stored here (downstream copies still are)")
    out.write(f"Erase customer {customer_id}: {held}. This cannot be undone.\n"
              f"Type the customer id to confirm: ")
    out.flush()
    return stdin.readline().strip() == customer_id


def print_view(view: CustomerView, out: TextIO = sys.stdout) -> None:
    record = view.overview.record
    out.write(f"customer {view.customer_id}"
              f"{'' if record else '  (no customer record: a timeline only)'}\n")
    for field, value in (record or {}).items():
        if field not in ("customer_id", "identifiers"):
            out.write(f"  {field}: {value}\n")
    if view.identifiers:
        out.write("  identifiers:\n")
    for key, owner in view.identifiers:
        state = ("resolves here" if owner == view.customer_id
                 else "claimed by no one yet" if owner is None else f"claimed by {owner}")
        out.write(f"    {key}  ({state})\n")
    _print_links(view, out)
    open_alerts = [a for a in view.alerts if a.get("status") != "resolved"]
    out.write(f"  timeline: {view.overview.entries} entries; alerts: {len(view.alerts)} "
              f"({len(open_alerts)} not resolved)\n")


def _print_links(view: CustomerView, out: TextIO) -> None:
    linked = view.overview.linked
    if linked:
        out.write("  provisional profiles linked in:\n")
    for pid, count in sorted(linked.items()):
        out.write(f"    {pid}  ({count} entries)\n")
    for pid in view.waiting:
        out.write(f"    {pid}  (entries waiting to be linked)\n")


def view_json(view: CustomerView) -> dict:
    return {"customer_id": view.customer_id, "known": view.known,
            "record": view.overview.record, "timeline_entries": view.overview.entries,
            "identifiers": [{"key": key, "resolves_to": owner}
                            for key, owner in view.identifiers],
            "linked_provisional_profiles": view.overview.linked,
            "unlinked_provisional_profiles": view.waiting,
            "alerts": [{"alert_id": a["alert_id"], "status": a["status"]} for a in view.alerts]}

