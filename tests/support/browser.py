"""Debian's Chromium driven by Playwright, for the browser tests of both pages.

Screenshots go to CXT_TEST_ARTIFACTS (default test-artifacts/).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.support.helpers import REPO

CHROMIUM = Path(os.environ.get("CXT_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("CXT_TEST_ARTIFACTS", REPO / "test-artifacts"))
# Without the networking switches Chromium keeps calling home, which this
# sandboxed machine refuses, slowly.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.is_file():
        raise AssertionError(f"chromium not found at {CHROMIUM}: `./dev test` installs "
                             "Debian's package, or set CXT_CHROMIUM")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def checked_page(browser: Browser, *, timezone_id: str | None = None,
                 expected_errors: tuple[str, ...] = ()) -> Iterator[Page]:
    """A 1280x900 page that fails the test on any console error or uncaught exception,
    except console errors containing one of `expected_errors`."""
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  timezone_id=timezone_id)
    page = context.new_page()
    errors: list[str] = []

    def note(message: ConsoleMessage) -> None:
        if message.type == "error" and not any(e in message.text for e in expected_errors):
            errors.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield page
        assert not errors, errors
    finally:
        context.close()


def off_loop(coroutine: object) -> None:
    """Run a coroutine to completion on a thread of its own: Playwright's sync API
    owns this thread's event loop."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coroutine).result()  # type: ignore[arg-type]


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    return path
