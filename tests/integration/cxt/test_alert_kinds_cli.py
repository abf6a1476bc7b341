"""`cxt alerts --kind` and `cxt alerts show` of a negative-interaction alert, against a real
Redis filled through the worker's own alert store."""

from __future__ import annotations

import uuid

import orjson
import pytest

from cxt.localstack import LocalStack
from kernel.settings import Settings
from tests.support.alert_data import negative_alert, store, survey_alert
from tests.support.helpers import isolated
from tests.support.processes import run_cxt


@pytest.fixture(scope="module")
def alerts(stack: LocalStack) -> tuple[Settings, dict, dict]:
    settings = isolated(stack.settings)
    customer = f"C-{uuid.uuid4().hex[:10]}"
    negative = negative_alert(customer, chat_id="CH-cli")
    survey = survey_alert(customer, linked_alert_id=negative["alert_id"])
    store(settings, alerts=[negative, survey])
    return settings, negative, survey


def test_the_kind_filter_lists_one_kind(alerts: tuple[Settings, dict, dict]) -> None:
    settings, negative, survey = alerts
    done = run_cxt(settings, "alerts", "--kind", "negative_interaction", "--json")
    assert done.returncode == 0, done.stderr
    assert [a["alert_id"] for a in orjson.loads(done.stdout)["alerts"]] == [negative["alert_id"]]
    table = run_cxt(settings, "alerts", "--kind", "bottom_2_box")
    assert table.returncode == 0, table.stderr
    rows = table.stdout.splitlines()[1:-1]
    assert [r.split()[0] for r in rows] == [survey["alert_id"]]
    assert rows[0].split()[3:5] == ["bottom_2_box", "1/5"]
    both = run_cxt(settings, "alerts")
    line = next(r for r in both.stdout.splitlines() if r.startswith(negative["alert_id"]))
    assert line.split()[3:5] == ["negative_interaction", "-"]
    assert line.endswith(" escalation_language,repeat_contact,negative_sentiment")


def test_show_prints_the_signals(alerts: tuple[Settings, dict, dict]) -> None:
    settings, negative, survey = alerts
    done = run_cxt(settings, "alerts", "show", negative["alert_id"])
    assert done.returncode == 0, done.stderr
    assert "negative interaction about billing" in done.stdout.splitlines()[0]
    assert "  signals (oldest first):" in done.stdout
    assert "escalation_language    chat:CH-cli  said 'ombudsman'" in done.stdout
    assert "repeat_contact         chat:CH-cli  count 3" in done.stdout
    linked = run_cxt(settings, "alerts", "show", survey["alert_id"])
    assert f"  linked to negative-interaction alert {negative['alert_id']}" in linked.stdout

