"""The shipped Prometheus alert rules: valid (`promtool check rules`), and each alert fires
on the series it is for and not on healthy ones (`promtool test rules`); the example
configuration that loads them is valid too.  No services: promtool only reads files."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.helpers import REPO

RULES = REPO / "config" / "prometheus"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: ./dev test installs Debian's prometheus package")
    return subprocess.run([promtool, *args], cwd=RULES, capture_output=True, text=True,
                          timeout=60)


def test_the_rules_are_valid() -> None:
    result = _promtool("check", "rules", "cx-timeline.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_each_alert_fires_when_it_should_and_only_then() -> None:
    result = _promtool("test", "rules", "cx-timeline.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_is_tested_and_has_a_runbook_section() -> None:
    rules = (RULES / "cx-timeline.rules.yml").read_text()
    tests = (RULES / "cx-timeline.rules.test.yml").read_text()
    runbooks = (REPO / "docs" / "operations.md").read_text().lower()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines()
              if line.strip().startswith("- alert:")]
    assert len(alerts) == 7
    for alert in alerts:
        assert f"alertname: {alert}" in tests, alert
    anchors = re.findall(r'runbook: "docs/operations.md#([a-z]+)"', rules)
    assert len(anchors) == len(alerts)
    for anchor in anchors:  # GitHub's anchor of "### CxtWorkerDown" is #cxtworkerdown
        assert f"\n### {anchor}\n" in runbooks, anchor


def test_the_example_configuration_loads_them(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("a-service-token")
    config = (RULES / "prometheus.example.yml").read_text().replace(
        "/etc/prometheus/cxt-service-token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(RULES / "cx-timeline.rules.yml", tmp_path)
    result = _promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_grafana_dashboard_reads_only_metrics_we_export() -> None:
    import json

    dashboard = json.loads((REPO / "config" / "grafana" / "cx-timeline.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    sources = "".join(p.read_text() for folder in ("streams", "dashboard", "consumers")
                      for p in (REPO / folder).glob("*.py"))
    names = {re.sub(r"_(total|bucket)$", "", n) for e in exprs
             for n in re.findall(r"\b(cxt_[a-z_]+)", e)}
    assert names, exprs
    for name in names:
        assert f'"{name}"' in sources, name
    rules = (RULES / "cx-timeline.rules.yml").read_text()
    for name in {re.sub(r"_(total|bucket)$", "", n) for n in re.findall(r"\b(cxt_[a-z_]+)", rules)}:
        assert f'"{name}"' in sources, name
