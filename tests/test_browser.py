"""The agent page in real headless Chromium (Debian's), against the real stack (the
advisory page's tests are in test_browser_advisory.py).

Screenshots are kept in CXT_TEST_ARTIFACTS (default test-artifacts/).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import LiveDashboard
from tests.helpers import REPO, envelope, produce, produce_events

CHROMIUM = Path(os.environ.get("CXT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("CXT_TEST_ARTIFACTS", REPO / "test-artifacts"))
# Without the networking switches Chromium keeps calling home, which this
# sandboxed machine refuses, slowly.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        pytest.fail(f"chromium not found at {CHROMIUM}: `./dev test` installs Debian's "
                    "package, or set CXT_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: _note_error(m, errors))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert not errors, errors
    finally:
        context.close()


def _note_error(message: ConsoleMessage, errors: list[str]) -> None:
    if message.type == "error":
        errors.append(message.text)


def _off_loop(coroutine: object) -> None:
    """Run a coroutine to completion on a thread of its own: Playwright's sync API
    owns this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_agent_page_shows_billing_history_first_and_the_prompt(
        live_dashboard: LiveDashboard, page: Page) -> None:
    live = live_dashboard
    customer = f"C-{uuid.uuid4().hex[:10]}"
    now = datetime.now(UTC)
    ago = lambda days: _iso(now - timedelta(days=days))  # noqa: E731
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
    _off_loop(produce(live.settings, live.settings.topics.customers,
                      [(customer.encode(), record)]))
    _off_loop(produce_events(live.settings, [billing_email, tech_chat, bad_survey]))

    page.goto(f"{live.url}/agent?agent=A-007#token={live.tokens['agent']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=15_000)
    # Let the three events be stored before the call arrives.
    page.wait_for_timeout(3000)
    call = envelope("call", customer, occurred_at=_iso(datetime.now(UTC)),
                    event_type="call.started", intent="billing", queue="billing-uk",
                    agent_id="A-007", ivr_path=["main", "billing", "disputes"])
    _off_loop(produce_events(live.settings, [call]))

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
    _screenshot(page, "agent.png")
