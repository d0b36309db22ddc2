"""Browser fixtures: one headless Chromium for the session, a fresh context (cookies, storage) per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.browser.helpers import DESKTOP, PERMISSIONS, PHONE, launch_chromium

# A page that never shows what a test waits for fails in seconds, not Playwright's default 30.
TIMEOUT_MS = 5_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        browser = await launch_chromium(playwright)
        yield browser
        await browser.close()


async def _page(browser: Browser, options: dict[str, Any]) -> AsyncIterator[Page]:
    context = await browser.new_context(**options)
    await context.grant_permissions(PERMISSIONS)
    context.set_default_timeout(TIMEOUT_MS)
    yield await context.new_page()
    await context.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh desktop-sized context."""
    async for page in _page(browser, DESKTOP):
        yield page


@pytest.fixture
async def phone_page(browser: Browser) -> AsyncIterator[Page]:
    """A page in a fresh phone-sized, touch context."""
    async for page in _page(browser, PHONE):
        yield page


@pytest.fixture
async def script_free_page(browser: Browser) -> AsyncIterator[Page]:
    """A desktop page with JavaScript off: what works here works for every reader."""
    async for page in _page(browser, {**DESKTOP, "java_script_enabled": False}):
        yield page
