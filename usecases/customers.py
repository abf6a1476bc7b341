"""Customer use-cases (`cxt customers show|erase`): what is held about a customer; erasure.

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
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from domain.records import Alert
from kernel.errors import CxtError
from kernel.kafka import make_producer, start_producer
from kernel.settings import Settings
from schemas.validate import customer_identity_keys
from store.alerts import AlertStore
from store.keys import provisional_id
from store.stores import open_stores
from store.timeline import CustomerOverview, TimelineStore

ERASE_TIMEOUT_S = 15.0


# schemas/customer.v1.json's customer_id: what the worker accepts as a tombstone key.
_CUSTOMER_ID = re.compile(r"^[^~}\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]{0,127}$")


class CustomerCommandError(CxtError):
    """Printed as one line; the command exits 1."""


@dataclass(frozen=True)
class CustomerView:
    customer_id: str
    overview: CustomerOverview
    identifiers: list[tuple[str, str | None]]  # identifier key -> who it resolves to
    waiting: list[str]  # provisional profiles of its identifiers not linked yet
    alerts: list[Alert]

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
    async with open_stores(settings) as stores:
        yield stores.timelines, stores.alerts


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
