"""The survey report (`cxt report`, GET /api/metrics/surveys): rows per hour or per day."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.survey_metrics import Row, aggregate, days_back, hours_back, hours_of_day
from kernel.settings import Settings
from store.alerts import AlertStore
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
    now = now or datetime.now(UTC)
    filters = {"channel": channel, "queue": queue, "agent": agent}
    if days:
        periods = {day: hours_of_day(day) for day in days_back(now, days)}
    else:
        periods = {hour: [hour] for hour in hours_back(now, hours or 24)}
    counters = await store.counters([h for hs in periods.values() for h in hs])
    rows = []
    for period, buckets in periods.items():
        merged: dict[bytes, int] = {}
        for bucket in buckets:
            for field, value in counters[bucket].items():
                merged[field] = merged.get(field, 0) + int(value)
        rows.append(aggregate(_label(period), merged, **filters))
    return rows


def _label(period: str) -> str:
    """"2026112210" -> "2026-11-22 10:00"; "20261122" -> "2026-11-22"."""
    day = f"{period[:4]}-{period[4:6]}-{period[6:8]}"
    return f"{day} {period[8:10]}:00" if len(period) == 10 else day
