"""How far back the agent view's digest reads (dashboard.agent_view.lookback_days): as far
as the file's prompts and "at risk" banner look, all entries, and surveys for longer."""

from __future__ import annotations

from dashboard.agent_view import lookback_days
from dashboard.prompts import load_agent_config, parse_agent_config
from tests.support.helpers import REPO


def test_the_shipped_file_looks_back_a_week_at_contacts_and_a_month_at_surveys() -> None:
    assert lookback_days(load_agent_config(REPO / "config" / "agent_context.toml")) == (7, 30)


def test_the_longest_window_of_each_kind_counts() -> None:
    config = parse_agent_config({"at_risk": {"within_days": 10}, "prompt": [
        {"id": "r", "when": "repeat_contact", "min_contacts": 2, "within_days": 4,
         "message": "{count}"},
        {"id": "b", "when": "recent_bottom_2_box", "within_days": 60, "message": "{score}"},
        {"id": "c", "when": "recent_bottom_2_box", "within_days": 5, "message": "{score}"},
    ]}, "t.toml")
    assert lookback_days(config) == (10, 60)
    assert lookback_days(parse_agent_config({}, "t.toml")) == (3, 3)
