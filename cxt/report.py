"""`cxt report`: the survey rows (`usecases.report`) as a table or JSON."""

from __future__ import annotations

import asyncio

import orjson

from domain.survey_metrics import (
    format_table,
    rows_to_json,
)
from kernel.settings import Settings
from usecases.report import survey_rows


def survey_report(settings: Settings, *, hours: int | None, days: int | None,
                  channel: str | None, queue: str | None, agent: str | None,
                  as_json: bool) -> None:
    rows = asyncio.run(survey_rows(settings, hours=hours, days=days, channel=channel,
                                   queue=queue, agent=agent))
    if as_json:
        print(orjson.dumps({"period": "day" if days else "hour", "rows": rows_to_json(rows)})
              .decode())
        return
    span = f"last {days} days, by day" if days else f"last {hours or 24} hours, by hour (UTC)"
    filters = ", ".join(f"{k}={v}" for k, v in
                        (("channel", channel), ("queue", queue), ("agent", agent)) if v)
    print(format_table(rows, f"Survey responses, {span}{f' ({filters})' if filters else ''}"))
