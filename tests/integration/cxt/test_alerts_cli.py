"""`cxt alerts resolve` against a real Kafka, Redis and worker: an alert is closed with
its cause, so an unclassified one needs --category (issue 14), and without it nothing is
published."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import orjson
import pytest

from cxt.localstack import LocalStack
from domain.alerts import alert_id_for
from kernel.settings import Settings
from tests.support.helpers import (
    create_topics,
    envelope,
    eventually,
    isolated,
    produce_events,
    read_topic,
)
from tests.support.processes import WorkerProcess, run_cxt


@pytest.fixture(scope="module")
def settings(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = isolated(stack.settings)
    asyncio.run(create_topics(settings))
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("alerts-cli")).start()
    try:
        yield settings
    finally:
        worker.stop()


def _raised(settings: Settings, **payload: object) -> dict:
    survey = envelope("survey", f"C-{uuid.uuid4().hex[:8]}", score=1, **payload)
    asyncio.run(produce_events(settings, [survey]))
    alert_id = alert_id_for(survey["event_id"])

    def shown() -> dict | None:
        result = run_cxt(settings, "alerts", "show", alert_id, "--json")
        return orjson.loads(result.stdout) if result.returncode == 0 else None

    alert = asyncio.run(eventually(shown, timeout=60, interval=0.5))
    assert isinstance(alert, dict), f"no alert {alert_id}"
    return alert


def _actions_on(settings: Settings, alert_id: str) -> list[str]:
    records = asyncio.run(read_topic(settings, settings.topics.alert_actions,
                                     until=lambda ms: False, timeout=3))
    return [orjson.loads(m.value)["action"] for m in records
            if orjson.loads(m.value)["alert_id"] == alert_id]


def test_an_unclassified_alert_is_resolved_only_with_a_category(settings: Settings) -> None:
    alert = _raised(settings, comment="meh", reason_codes=[])
    alert_id = alert["alert_id"]
    assert alert["category"] == "unclassified"
    ack = run_cxt(settings, "alerts", "ack", alert_id, "--actor", "adv-ana")
    assert ack.returncode == 0, ack.stderr

    refused = run_cxt(settings, "alerts", "resolve", alert_id, "--actor", "adv-ana",
                      "--note", "customer happy now")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr == (
        f"cxt: error: cannot resolve alert {alert_id}: its category is unclassified; name the "
        "cause with --category, one of skill, business_operations, customer_expectation\n")
    assert refused.stdout == ""
    assert _actions_on(settings, alert_id) == ["acknowledge"]  # the resolve was never sent

    resolved = run_cxt(settings, "alerts", "resolve", alert_id, "--actor", "adv-ana",
                       "--category", "customer_expectation")
    assert resolved.returncode == 0, resolved.stderr
    assert f"{alert_id}  RESOLVED" in resolved.stdout
    assert "category customer_expectation" in resolved.stdout
    assert "(category unclassified -> customer_expectation)" in resolved.stdout
    listed = orjson.loads(run_cxt(settings, "alerts", "--category", "customer_expectation",
                                  "--json").stdout)
    assert [a["alert_id"] for a in listed["alerts"]] == [alert_id]


def test_a_categorised_alert_resolves_as_before(settings: Settings) -> None:
    alert = _raised(settings, comment="agent was rude", reason_codes=["agent_attitude"])
    assert alert["category"] == "skill"
    for step in (("ack",), ("resolve",)):
        result = run_cxt(settings, "alerts", *step, alert["alert_id"], "--actor", "adv-ben",
                         "--json")
        assert result.returncode == 0, result.stderr
    final = orjson.loads(result.stdout)
    assert (final["status"], final["category"]) == ("resolved", "skill")
    assert "categorised_by" not in final
