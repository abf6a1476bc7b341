"""`cxt report contacts` and `cxt report early-warning` against a real Redis, filled
through the stores the worker writes with; plain `cxt report` stays the survey report."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from redis.asyncio import Redis

from cxt.localstack import LocalStack
from kernel.settings import Settings
from kernel.times import iso_datetime
from store.alerts import AlertStore
from store.contact_reasons import ContactReasonStore
from store.keys import Keys
from store.negatives import NegativeStore
from tests.support.contacts import count_contacts, fact
from tests.support.helpers import isolated
from tests.support.processes import run_cxt


@pytest.fixture(scope="module")
def settings(stack: LocalStack) -> Settings:
    settings = isolated(stack.settings)
    now_ms = int(time.time() * 1000)
    raised = datetime.now(UTC)

    def alert(alert_id: str, kind: str, customer: str, seconds_ago: float) -> dict:
        return {"alert_id": alert_id, "kind": kind, "customer_id": customer,
                "raised_at": iso_datetime(raised - timedelta(seconds=seconds_ago))}

    async def fill() -> None:
        redis = Redis.from_url(settings.redis_url)
        keys = Keys(settings.redis_prefix)
        try:
            contacts = ContactReasonStore(redis, keys, ttl_days=1)
            # chat:1 is C-1's second contact about billing: a repeat.
            await count_contacts(NegativeStore(redis, keys, counters_ttl_days=1), [
                fact("C-1", "call:1", now_ms),
                fact("C-1", "call:1", now_ms, negative=True),
                fact("C-1", "chat:1", now_ms, queue="billing-chat", intent="Billing"),
                fact("C-2", "call:2", now_ms, queue="tech-uk", intent="technical",
                     negative=True),
            ])
            await contacts.count_alerts([("AL-n1", now_ms)])
            await AlertStore(redis, keys, counters_ttl_days=1).put_new([
                alert("AL-n1", "negative_interaction", "C-1", 300),
                alert("AL-b1", "bottom_2_box", "C-1", 60),
                alert("AL-b2", "bottom_2_box", "C-2", 30),
            ], now_ms, 3_600_000)
        finally:
            await redis.aclose()

    asyncio.run(fill())
    return settings


def test_contacts_as_json_with_filters(settings: Settings) -> None:
    done = run_cxt(settings, "report", "contacts", "--hours", "2", "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)
    assert report["period"] == "hour"
    rows = [row for row in report["rows"] if row["contacts"]]
    assert len(rows) == 1
    [row] = rows
    assert (row["contacts"], row["repeat"], row["negative"], row["negative_alerts"]) == \
        (3, 1, 2, 1)
    assert row["by_intent"][0] == {"intent": "billing", "contacts": 2, "repeat": 1,
                                   "repeat_rate": 0.5, "negative": 1, "negative_share": 0.5}
    chat = run_cxt(settings, "report", "contacts", "--hours", "2", "--channel", "chat",
                   "--json")
    assert sum(r["contacts"] for r in orjson.loads(chat.stdout)["rows"]) == 1
    tech = run_cxt(settings, "report", "contacts", "--days", "1", "--intent", "technical",
                   "--json")
    [day] = orjson.loads(tech.stdout)["rows"]
    assert (day["contacts"], day["negative"]) == (1, 1)


def test_contacts_as_a_table(settings: Settings) -> None:
    done = run_cxt(settings, "report", "contacts", "--queue", "tech-uk")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Contacts by intent, last 24 hours, by hour (UTC) (queue=tech-uk)"
    total = lines.index(next(line for line in lines if line.startswith("total")))
    assert lines[total].split()[1:4] == ["(all)", "1", "0"]
    assert lines[total + 1].split()[:2] == ["technical", "1"]


def test_plain_report_is_still_the_survey_report(settings: Settings) -> None:
    done = run_cxt(settings, "report", "--hours", "2")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Survey responses, last 2 hours")


def test_early_warning(settings: Settings) -> None:
    done = run_cxt(settings, "report", "early-warning", "--json")
    assert done.returncode == 0, done.stderr
    figure = orjson.loads(done.stdout)
    assert figure["customers_with_bottom_2_box"] == 2
    assert figure["of_which_alerted_first"] == 1
    assert figure["share"] == 0.5
    assert figure["lead_seconds"]["median"] == pytest.approx(240, abs=0.01)
    assert figure["alerts_read"] == 3
    text = run_cxt(settings, "report", "early-warning", "--window-hours", "1").stdout
    assert "1 (50.0%) was raised first" in text
    assert "median 240.0 s" in text


@pytest.mark.parametrize(("args", "message"), [
    (["report", "contacts", "--hours", "0"], "argument --hours: 0 must be greater than 0"),
    (["report", "contacts", "--hours", "1", "--days", "1"], "not allowed with argument"),
    (["report", "contacts", "--agent", "A-1"], "unrecognized arguments: --agent"),
    (["report", "early-warning", "--window-hours", "nan"], "is not a whole number"),
    (["report", "early-warning", "--limit", "50001"], "50001 is more than 50000"),
])
def test_bad_arguments_are_refused_without_a_traceback(
        settings: Settings, args: list[str], message: str) -> None:
    done = run_cxt(settings, *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
