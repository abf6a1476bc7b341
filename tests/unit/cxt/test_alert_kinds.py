"""`cxt alerts --kind`: the kinds come from the contract, the list and `show` print each kind's
own reason (a score, or the signals); no services."""

from __future__ import annotations

import io
import subprocess
import sys
from typing import Any

import orjson

from cxt.alerts import print_alert, print_list
from tests.support.helpers import REPO
from usecases.alerts import ALERT_KINDS, _kinds, page_of

PICK: dict[str, Any] = {"statuses": None, "category": None, "queue": None, "agent": None}


def _survey(n: int) -> Any:  # an Alert as stored
    return {"alert_id": f"AL-{n}", "kind": "bottom_2_box", "status": "open",
            "category": "skill", "queue": "q", "agent_id": "A-1",
            "raised_at": "2026-11-22T10:00:00Z", "score": 1, "scale_max": 5,
            "customer_id": f"C-{n}"}


def _negative(n: int) -> Any:
    return {
        "alert_id": f"AL-{n}", "kind": "negative_interaction", "status": "open",
        "category": "business_operations", "queue": "billing-uk", "agent_id": "A-2",
        "raised_at": "2026-11-22T11:00:00Z", "score": None, "scale_max": None,
        "customer_id": f"C-{n}", "intent": "billing", "contact_id": "CH-9",
        "latency_ms": 12, "ack_deadline": "2026-11-22T11:15:00Z", "linked_alerts": ["AL-1"],
        "history": [{"at": "2026-11-22T11:00:00Z", "event": "raised"}], "context": [],
        "signals": [
            {"rule": "escalation_language", "event_id": "ev-1", "channel": "chat",
             "contact": "chat:CH-9", "occurred_at": "2026-11-22T10:59:00Z",
             "detail": "said 'ombudsman'"},
            {"rule": "repeat_contact", "event_id": "ev-1", "channel": "chat",
             "contact": "chat:CH-9", "occurred_at": "2026-11-22T10:59:00Z", "count": 3},
            {"rule": "escalation_language", "event_id": "ev-2", "channel": "chat",
             "contact": "chat:CH-9", "occurred_at": "2026-11-22T10:59:30Z",
             "detail": "said 'complaint'"},
        ],
    }


def test_the_kinds_are_the_contracts_in_either_form() -> None:
    assert ALERT_KINDS == ("bottom_2_box", "negative_interaction")
    assert _kinds({"const": "bottom_2_box"}) == ("bottom_2_box",)
    assert _kinds({"enum": ["a", "b"]}) == ("a", "b")


def test_the_kind_filter_keeps_one_kind_and_old_alerts_are_bottom_2_box() -> None:
    legacy = {k: v for k, v in _survey(3).items() if k != "kind"}
    recent = [_negative(4), legacy, _survey(2), _negative(1)]
    negative = page_of(recent, limit=10, kind="negative_interaction", **PICK)
    assert [a["alert_id"] for a in negative.alerts] == ["AL-4", "AL-1"]
    surveys = page_of(recent, limit=10, kind="bottom_2_box", **PICK)
    assert [a["alert_id"] for a in surveys.alerts] == ["AL-3", "AL-2"]
    assert len(page_of(recent, limit=10, **PICK).alerts) == 4


def test_the_list_shows_the_kind_and_the_signal_rules_instead_of_a_score() -> None:
    out = io.StringIO()
    print_list(page_of([_negative(4), _survey(2)], limit=10, **PICK), out)
    header, negative, survey = out.getvalue().splitlines()[:3]
    assert header.split() == ["alert_id", "status", "raised_at", "kind", "score", "category",
                              "customer", "queue", "agent", "signals"]
    assert negative.split()[3:5] == ["negative_interaction", "-"]
    assert negative.endswith(" escalation_language,repeat_contact")
    assert survey.split()[3:5] == ["bottom_2_box", "1/5"]
    assert survey.endswith(" -")


def test_show_prints_each_signal_and_the_linked_surveys() -> None:
    out = io.StringIO()
    print_alert(_negative(4), out)
    text = out.getvalue()
    assert text.startswith("AL-4  OPEN  negative interaction about billing  "
                           "category business_operations\n")
    assert "  signals (oldest first):\n" in text
    lines = [line.split() for line in text.splitlines() if "chat:CH-9" in line]
    assert [line[1] for line in lines] == ["escalation_language", "repeat_contact",
                                           "escalation_language"]
    assert "count 3" in text and "said 'complaint'" in text
    assert "  linked bottom-2-box alerts: AL-1\n" in text
    assert "ms after the interaction reached Kafka" in text


def test_an_unknown_kind_is_refused_with_the_choices() -> None:
    result = subprocess.run([sys.executable, "-m", "cxt", "alerts", "--kind", "angry"],
                            cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "argument --kind: invalid choice: 'angry' (choose from " in result.stderr
    assert "bottom_2_box" in result.stderr and "negative_interaction" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_api_documents_the_same_kinds() -> None:
    doc = orjson.loads((REPO / "dashboard" / "openapi.json").read_bytes())
    params = doc["paths"]["/api/alerts"]["get"]["parameters"]
    [kind] = [p for p in params if p["name"] == "kind"]
    assert tuple(kind["schema"]["enum"]) == ALERT_KINDS
