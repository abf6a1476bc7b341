"""The reports of `cxt report` and GET /api/metrics/*: survey rows and contact-reason
rows per hour or per day, and the early-warning figure."""

from __future__ import annotations

from datetime import UTC, datetime

from domain import contact_reasons
from domain.contact_reasons import ContactRow
from domain.early_warning import DEFAULT_WINDOW_S, EarlyWarning
from domain.early_warning import early_warning as early_warning_of
from domain.survey_metrics import Row, aggregate, days_back, hours_back, hours_of_day
from kernel.settings import Settings
from store.alerts import AlertStore
from store.contact_reasons import ContactReasonStore
from store.stores import open_stores
from usecases.alerts import alert_store


async def survey_rows(settings: Settings, *, hours: int | None = None, days: int | None = None,
                      channel: str | None = None, queue: str | None = None,
                      agent: str | None = None, now: datetime | None = None) -> list[Row]:
    """One row per hour (default: the last 24) or per day, oldest first."""
    async with alert_store(settings) as store:
        return await survey_rows_from(store, hours=hours, days=days, channel=channel,
                                      queue=queue, agent=agent, now=now)


async def survey_rows_from(store: AlertStore, *, hours: int | None = None,
                           days: int | None = None, channel: str | None = None,
                           queue: str | None = None, agent: str | None = None,
                           now: datetime | None = None) -> list[Row]:
    filters = {"channel": channel, "queue": queue, "agent": agent}
    periods = _periods(now, hours, days)
    counters = await store.counters([h for hs in periods.values() for h in hs])
    return [aggregate(_label(period), _merged(buckets, counters), **filters)
            for period, buckets in periods.items()]


def _merged(buckets: list[str], counters: dict[str, dict[bytes, bytes]]) -> dict[bytes, int]:
    """One period's counters: its hours' hashes added field by field."""
    merged: dict[bytes, int] = {}
    for bucket in buckets:
        for field, value in counters[bucket].items():
            merged[field] = merged.get(field, 0) + int(value)
    return merged


def _periods(now: datetime | None, hours: int | None, days: int | None
             ) -> dict[str, list[str]]:
    """Period id -> its hour buckets: the last `days` days, else the last `hours` hours."""
    now = now or datetime.now(UTC)
    if days:
        return {day: hours_of_day(day) for day in days_back(now, days)}
    return {hour: [hour] for hour in hours_back(now, hours or 24)}


async def contact_rows(settings: Settings, *, hours: int | None = None,
                       days: int | None = None, channel: str | None = None,
                       queue: str | None = None, intent: str | None = None,
                       now: datetime | None = None) -> list[ContactRow]:
    """Contacts per intent, one row per hour (default: the last 24) or per day."""
    async with open_stores(settings) as stores:
        return await contact_rows_from(stores.contact_reasons, hours=hours, days=days,
                                       channel=channel, queue=queue, intent=intent, now=now)


async def contact_rows_from(store: ContactReasonStore, *, hours: int | None = None,
                            days: int | None = None, channel: str | None = None,
                            queue: str | None = None, intent: str | None = None,
                            now: datetime | None = None) -> list[ContactRow]:
    periods = _periods(now, hours, days)
    counters = await store.counters([h for hs in periods.values() for h in hs])
    return [contact_reasons.aggregate(_label(period), _merged(buckets, counters),
                                      channel=channel, queue=queue, intent=intent)
            for period, buckets in periods.items()]


# How many of the newest alerts the early-warning figure reads by default.
EARLY_WARNING_SCAN = 10_000


async def early_warning(settings: Settings, *, limit: int = EARLY_WARNING_SCAN,
                        window_s: float = DEFAULT_WINDOW_S) -> tuple[EarlyWarning, int]:
    """The figure over the newest `limit` alerts, and how many alerts were read."""
    async with alert_store(settings) as store:
        return await early_warning_from(store, limit=limit, window_s=window_s)


async def early_warning_from(store: AlertStore, *, limit: int = EARLY_WARNING_SCAN,
                             window_s: float = DEFAULT_WINDOW_S) -> tuple[EarlyWarning, int]:
    alerts = await store.recent(limit)
    return early_warning_of(alerts, window_s=window_s), len(alerts)


def _label(period: str) -> str:
    """"2026112210" -> "2026-11-22 10:00"; "20261122" -> "2026-11-22"."""
    day = f"{period[:4]}-{period[4:6]}-{period[6:8]}"
    return f"{day} {period[8:10]}:00" if len(period) == 10 else day
