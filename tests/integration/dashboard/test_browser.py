"""The agent page in real headless Chromium (Debian's), against the real stack (the
advisory page's tests are in test_browser_advisory.py).

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import LiveDashboard
from tests.support.browser import checked_page, chromium, iso, off_loop, screenshot
from tests.support.helpers import envelope, produce, produce_events


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    with checked_page(browser) as checked:
        yield checked


def test_agent_page_shows_billing_history_first_and_the_prompt(
        live_dashboard: LiveDashboard, page: Page) -> None:
    live = live_dashboard
    customer = f"C-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    ago = lambda days: iso(now - timedelta(days=days))  # noqa: E731
    billing_email = envelope("email", customer, occurred_at=ago(5), intent="billing",
                             subject="Charged twice this month", agent_id="A-013")
    tech_chat = envelope("chat", customer, occurred_at=ago(1), event_type="chat.ended",
                         intent="technical", queue="tech-chat", agent_id="A-012",
                         outcome="resolved")
    bad_survey = envelope("survey", customer, occurred_at=ago(2), survey_id="S-2", score=1,
                          contact_id=billing_email["event_id"], contact_channel="email",
                          agent_id="A-013", queue="billing-uk",
                          comment="billing error still not fixed",
                          reason_codes=["billing_error"])
    record = orjson.dumps({"customer_id": customer, "name": "Grace Browser",
                           "plan": "premium", "segment": "consumer"})
    off_loop(produce(live.settings, live.settings.topics.customers,
                     [(customer.encode(), record)]))
    off_loop(produce_events(live.settings, [billing_email, tech_chat, bad_survey]))

    page.goto(f"{live.url}/agent?agent=A-007#token={live.tokens['agent']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    # Let the three events be stored before the call arrives.
    page.wait_for_timeout(3000)
    call = envelope("call", customer, occurred_at=iso(datetime.now(UTC)),
                    event_type="call.started", intent="billing", queue="billing-uk",
                    agent_id="A-007", ivr_path=["main", "billing", "disputes"])
    off_loop(produce_events(live.settings, [call]))

    expect(page.locator("#customer")).to_contain_text("Grace Browser", timeout=15_000)
    events = page.locator("#events .event")
    expect(events).to_have_count(3)
    # Billing first (the survey rates the billing email, so it is billing too),
    # the technical chat last although it is the newest.
    assert [events.nth(i).get_attribute("data-relevance") for i in range(3)] == \
        ["intent", "intent", "other"]
    expect(events.nth(2)).to_contain_text("technical")
    expect(page.locator("#prompts .prompt").first).to_contain_text("bad experience")
    expect(page.locator("#open-alerts")).to_contain_text("1")
    screenshot(page, "agent.png")
