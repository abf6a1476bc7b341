"""`cxt report`: the survey rows, the contact-reason rows and the early-warning figure
(`usecases.report`) as a table or JSON; and `cxt report routing`, the routing hint
against random assignment on seeded traffic (`cxt.routing_trial`, offline)."""

from __future__ import annotations

import asyncio

import orjson

from cxt.routing_trial import run_trial
from domain import contact_reasons
from domain.early_warning import format_text
from domain.routing import load_routing_config
from domain.survey_metrics import (
    format_table,
    rows_to_json,
)
from kernel.settings import Settings
from kernel.status import StatusLine
from usecases.report import contact_rows, early_warning, survey_rows


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


def contact_report(settings: Settings, *, hours: int | None, days: int | None,
                   channel: str | None, queue: str | None, intent: str | None,
                   as_json: bool) -> None:
    rows = asyncio.run(contact_rows(settings, hours=hours, days=days, channel=channel,
                                    queue=queue, intent=intent))
    if as_json:
        print(orjson.dumps({"period": "day" if days else "hour",
                            "rows": contact_reasons.rows_to_json(rows)}).decode())
        return
    span = f"last {days} days, by day" if days else f"last {hours or 24} hours, by hour (UTC)"
    filters = ", ".join(f"{k}={v}" for k, v in
                        (("channel", channel), ("queue", queue), ("intent", intent)) if v)
    print(contact_reasons.format_table(
        rows, f"Contacts by intent, {span}{f' ({filters})' if filters else ''}\n"
        "repeat: the Nth contact about an intent, negative: a signal fired, "
        "alerts: negative-interaction alerts raised (all, unfiltered)"))


def early_warning_report(settings: Settings, *, limit: int, window_s: float,
                         as_json: bool) -> None:
    figure, scanned = asyncio.run(early_warning(settings, limit=limit, window_s=window_s))
    if as_json:
        print(orjson.dumps({**figure.to_json(), "alerts_read": scanned,
                            "window_seconds": window_s}).decode())
        return
    print(format_text(figure, scanned))


def routing_report(settings: Settings, *, seed: int, contacts: int, rules: str | None,
                   as_json: bool) -> None:
    config = load_routing_config(rules or settings.routing_rules_path)
    status = StatusLine()

    def progress(arm: str, done: int) -> None:
        status.update(f"routing trial: {arm} arm, {done:,} of {contacts:,} contacts")

    result = run_trial(config, seed=seed, contacts=contacts, progress=progress)
    status.done()
    if as_json:
        print(orjson.dumps({**result.to_json(), "rules": config.source}).decode())
        return
    print(result.text())
    print(f"  rules                {config.source}")
