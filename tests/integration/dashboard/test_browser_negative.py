"""Negative interactions on both pages in real headless Chromium (Debian's), against the live
dashboard and the real Redis: the agent page's "at risk" banner, and the advisory page's
kind filter, signals, linked alerts and the hourly chart's negative-interaction series.

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/), *-negative*.png.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.conftest import LiveDashboard
from tests.support.alert_data import negative_alert, scored_chat, store, survey_alert
from tests.support.browser import checked_page, chromium, iso, off_loop, screenshot
from tests.support.helpers import envelope, produce_events


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with checked_page(browser, expected_errors=("WebSocket connection",)) as checked:
        yield checked


def _customer() -> str:
    return f"C-{uuid.uuid4().hex[:10]}"


# -- the agent page ----------------------------------------------------------------------


def _look_up(page: Page, customer_id: str) -> None:
    page.fill("#lookup-customer", customer_id)
    page.click("#lookup-form button[type=submit]")
    expect(page.locator("#context")).to_have_attribute("data-customer-id", customer_id,
                                                       timeout=15_000)


def test_the_banner_lists_why_a_customer_is_at_risk_and_stays_away_for_a_happy_one(
        live: LiveDashboard, page: Page) -> None:
    unhappy, happy = _customer(), _customer()
    # Words that must arrive as text: the reasons quote what customers wrote.
    alert = negative_alert(unhappy, chat_id=f"CH-{uuid.uuid4().hex[:6]}")
    alert["signals"][0]["detail"] = "said '<b>ombudsman</b>'"
    store(live.settings, alerts=[alert], entries=[
        scored_chat(unhappy, hours_ago=2, score=-0.74, label="negative",
                    text="Third time I call about this bill, I am furious"),
        scored_chat(happy, hours_ago=1, score=0.8, label="positive", text="Thanks, all sorted"),
    ])
    page.goto(f"{live.url}/agent?agent=A-007#token={live.tokens['agent']}")
    _look_up(page, unhappy)
    banner = page.locator("#at-risk")
    expect(banner).to_be_visible()
    assert banner.get_attribute("role") == "alert"
    reasons = banner.locator(".at-risk-reason")
    expect(reasons).to_have_text([
        "Open negative-interaction alert: said '<b>ombudsman</b>' on chat, "
        "3rd contact about billing, negative words on chat (-0.81)",
        "Negative chat 2 h ago (-0.74)",
    ])
    assert banner.locator("b").count() == 0  # shown as text, never parsed as markup
    # Above everything else of the customer's context.
    box, card = banner.bounding_box(), page.locator("#customer").bounding_box()
    assert box and card and box["y"] + box["height"] <= card["y"], (box, card)
    expect(page.locator("#open-alerts .open-alert-kind")).to_have_text("negative interaction")
    expect(page.locator("#events .ev-sentiment")).to_have_text("negative (-0.74)")
    screenshot(page, "agent-negative-at-risk.png")

    _look_up(page, happy)
    expect(banner).to_be_hidden()
    expect(banner.locator(".at-risk-reason")).to_have_count(0)


def test_an_angry_chat_through_kafka_raises_the_banner_for_the_next_contact(
        live: LiveDashboard, page: Page) -> None:
    """End to end: the worker scores the chat, raises the alert; the page says why."""
    customer = _customer()
    chat_id = f"CH-{uuid.uuid4().hex[:8]}"
    said = iso(datetime.now(UTC) - timedelta(minutes=3))
    chat = envelope("chat", customer, occurred_at=said, event_type="chat.ended",
                    chat_id=chat_id, intent="billing", queue="billing-chat", agent_id="A-012",
                    outcome="unresolved", handle_seconds=420, messages=[
                        {"from": "agent", "text": "Hello, how can I help?", "at": said},
                        {"from": "customer", "at": said,
                         "text": "This is disgusting, the worst service ever. I am taking "
                                 "this to the ombudsman."}])
    off_loop(produce_events(live.settings, [chat]))
    page.goto(f"{live.url}/agent?agent=A-007#token={live.tokens['agent']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    banner = page.locator("#at-risk")
    reasons = banner.locator(".at-risk-reason")
    # The worker stores the entry and raises the alert within a batch or two.
    deadline = datetime.now(UTC) + timedelta(seconds=30)
    while True:
        _look_up(page, customer)
        if reasons.count() == 2 or datetime.now(UTC) > deadline:
            break
        page.wait_for_timeout(500)
    expect(banner).to_be_visible()
    expect(reasons.first).to_contain_text("Open negative-interaction alert: ")
    expect(reasons.first).to_contain_text("said 'ombudsman' on chat")
    expect(reasons.first).to_contain_text("negative words on chat (-0.")
    expect(reasons.nth(1)).to_contain_text("Negative chat 3 min ago (-0.")


# -- the advisory page -------------------------------------------------------------------


def _row(page: Page, customer: str) -> Locator:
    return page.locator(f'#alerts tr[data-customer-id="{customer}"]')


def test_the_kind_filter_the_signals_and_the_linked_survey(
        live: LiveDashboard, page: Page) -> None:
    angry, rated = _customer(), _customer()
    negative = negative_alert(angry, chat_id=f"CH-{uuid.uuid4().hex[:6]}")
    survey = survey_alert(rated, comment="nobody called me back")
    linked = survey_alert(angry, comment="still waiting", linked_alert_id=negative["alert_id"])
    negative["linked_alerts"] = [linked["alert_id"]]
    store(live.settings, alerts=[negative, survey, linked])

    page.goto(f"{live.url}/advisory?kind=negative_interaction#token={live.tokens['advisor']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    expect(page.locator("#f-kind")).to_have_value("negative_interaction")
    expect(_row(page, angry)).to_have_count(1, timeout=15_000)
    expect(_row(page, rated)).to_have_count(0)
    row = _row(page, angry)
    expect(row).to_have_attribute("data-kinds", "negative_interaction")
    expect(row.locator(".col-score")).to_have_text("\u2013")  # no survey score
    expect(row.locator(".col-comment .kind-tag")).to_have_text("negative")
    expect(row.locator(".col-comment")).to_contain_text("said 'ombudsman' on chat")

    page.select_option("#f-kind", "bottom_2_box")
    expect(_row(page, rated)).to_have_count(1, timeout=15_000)
    expect(_row(page, angry)).to_have_attribute("data-kinds", "bottom_2_box")
    assert "kind=bottom_2_box" in page.url
    page.select_option("#f-kind", "")
    assert "kind=" not in page.url
    page.select_option("#f-kind", "negative_interaction")
    expect(_row(page, rated)).to_have_count(0)

    row.click()
    detail = page.locator("#detail")
    expect(detail).to_have_attribute("data-detail-id", negative["alert_id"], timeout=15_000)
    signals = detail.locator("#signals .signal-rule")
    expect(signals).to_have_text(["said 'ombudsman' on chat", "3rd contact about billing",
                                  "negative words on chat (-0.81)"])
    expect(detail).to_contain_text("Negative interaction")
    expect(detail.locator(".kind-tag").first).to_have_text("negative interaction")
    expect(detail.locator(".score-big")).to_have_count(0)  # no survey fields: they are null
    expect(detail).not_to_contain_text("null")
    expect(detail.locator(".linked-alerts .alert-link")).to_have_text([linked["alert_id"]])
    screenshot(page, "advisory-negative.png")

    # The linked survey opens from there and points back.
    detail.locator(".linked-alerts .alert-link").click()
    expect(detail).to_have_attribute("data-detail-id", linked["alert_id"], timeout=15_000)
    expect(detail.locator(".score-big")).to_have_text("1/5")
    expect(detail.locator(".alert-link")).to_have_text([negative["alert_id"]])


def test_the_hourly_chart_shows_negative_interaction_alerts_beside_bottom_2_box(
        live: LiveDashboard, page: Page) -> None:
    store(live.settings, alerts=[negative_alert(_customer(), chat_id="CH-chart")])
    page.goto(f"{live.url}/advisory#token={live.tokens['advisor']}")
    expect(page.locator("#chart-hourly")).to_have_attribute("data-rows", "24", timeout=15_000)
    labels = page.evaluate(
        "() => window.Chart.getChart('chart-hourly').data.datasets.map((d) => d.label)")
    assert "negative-interaction alerts" in labels and "bottom-2-box surveys" in labels
    raised = page.evaluate(
        "() => window.Chart.getChart('chart-hourly').data.datasets"
        ".find((d) => d.label === 'negative-interaction alerts').data.reduce((a, b) => a + b, 0)")
    assert raised >= 1
    screenshot(page, "advisory-negative-chart.png")
