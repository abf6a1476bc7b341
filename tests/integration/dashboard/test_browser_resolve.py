"""The advisory page closes an alert with its cause (issue 14): for an unclassified alert
the category list is required, the page refuses to resolve without a choice, shows the
service's reason when the service refuses, and resolves once a category is chosen.
In real headless Chromium (Debian's) against the real stack.

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Browser, Page, Request, Route, expect

from tests.conftest import LiveDashboard
from tests.support.browser import checked_page, chromium, iso, off_loop, screenshot
from tests.support.helpers import envelope, produce_events

CHOICES = ["skill", "business_operations", "customer_expectation"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    # Chromium logs every refused request; the 422 below is one the test provokes.
    with checked_page(browser, expected_errors=("status of 422",)) as checked:
        yield checked


@pytest.fixture
def api(live_dashboard: LiveDashboard) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_dashboard.url, timeout=30,
                      headers=live_dashboard.headers("service")) as client:
        yield client


def _open_alert(live: LiveDashboard, page: Page, comment: str, codes: list[str]) -> str:
    customer = f"C-{uuid.uuid4().hex[:10]}"
    off_loop(produce_events(live.settings, [envelope(
        "survey", customer, occurred_at=iso(datetime.now(UTC)),
        survey_id=f"S-{uuid.uuid4().hex[:8]}", score=1, queue="billing-uk", agent_id="A-007",
        comment=comment, reason_codes=codes)]))
    page.goto(f"{live.url}/advisory#token={live.tokens['advisor']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    row = page.locator(f'#alerts tr[data-customer-id="{customer}"]')
    expect(row).to_have_count(1, timeout=20_000)
    row.click()
    expect(page.locator("#detail")).to_have_attribute("data-customer-id", customer)
    page.locator("#ack").click()
    expect(page.locator("#detail")).to_have_attribute("data-status", "acknowledged",
                                                      timeout=30_000)
    alert_id = page.locator("#detail").get_attribute("data-detail-id")
    assert alert_id
    return alert_id


def test_an_unclassified_alert_is_resolved_only_with_a_category(
        live_dashboard: LiveDashboard, page: Page, api: httpx.Client) -> None:
    alert_id = _open_alert(live_dashboard, page, "meh", [])
    assert api.get(f"/api/alerts/{alert_id}").json()["category"] == "unclassified"
    box = page.locator("#resolve-category")
    expect(box).to_have_js_property("required", True)
    expect(box.locator("option").first).to_have_text("choose the cause (required)")
    # The choices are the API's (openapi.json): never unclassified.
    values = box.locator("option").evaluate_all("options => options.map(o => o.value)")
    assert values == ["", *CHOICES]

    resolves: list[str] = []
    page.on("request", lambda r: resolves.append(r.url) if r.url.endswith("/resolve") else None)
    page.locator("#resolve").click()
    error = page.locator("#action-error")
    expect(error).to_have_text("This alert is unclassified: choose its cause before resolving "
                               "(skill, business operations, customer expectation).")
    expect(box).to_be_focused()
    assert resolves == []  # refused on the page, nothing sent
    screenshot(page, "advisory-resolve-needs-category.png")

    # Should the page's own check be passed by, the service still refuses, and the
    # page shows the service's words.
    def strip_category(route: Route, request: Request) -> None:
        route.continue_(post_data="{}")

    page.route("**/resolve", strip_category)
    box.select_option("customer_expectation")
    page.locator("#resolve").click()
    expect(error).to_have_text(f"cannot resolve alert {alert_id}: its category is "
                               "unclassified; pass a category, one of skill, "
                               "business_operations, customer_expectation", timeout=30_000)
    assert api.get(f"/api/alerts/{alert_id}").json()["status"] == "acknowledged"
    page.unroute("**/resolve")

    page.locator("#resolve").click()
    expect(page.locator("#action-ok")).to_have_text("Resolved this alert.", timeout=30_000)
    expect(error).to_be_hidden()
    expect(page.locator("#detail")).to_have_attribute("data-status", "resolved")
    expect(page.locator('#detail-body .history li[data-event="resolved"]')).to_contain_text(
        "Re-categorised by adv-ana: unclassified → customer expectation")
    resolved = api.get(f"/api/alerts/{alert_id}").json()
    assert (resolved["status"], resolved["category"]) == ("resolved", "customer_expectation")
    page.locator("#detail-body .history").scroll_into_view_if_needed()
    screenshot(page, "advisory-resolved-with-category.png")


def test_a_categorised_alert_keeps_its_category_without_a_choice(
        live_dashboard: LiveDashboard, page: Page, api: httpx.Client) -> None:
    alert_id = _open_alert(live_dashboard, page, "agent was rude", ["agent_attitude"])
    box = page.locator("#resolve-category")
    expect(box).to_have_js_property("required", False)
    expect(box.locator("option").first).to_have_text("keep current category")
    page.locator("#resolve").click()
    expect(page.locator("#action-ok")).to_have_text("Resolved this alert.", timeout=30_000)
    resolved = api.get(f"/api/alerts/{alert_id}").json()
    assert (resolved["status"], resolved["category"]) == ("resolved", "skill")
