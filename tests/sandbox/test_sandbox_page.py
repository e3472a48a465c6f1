"""The sandbox web page follows an alert's lifecycle live, in a real headless Chromium."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page, expect

KEY = "il1apipage000000000001"
ALERT_KEY = "page/db-1/disk"
TIMEOUT_MS = 10_000


@pytest.mark.browser
async def test_alert_row_follows_lifecycle_without_reload(
    browser_page: Page, sandbox_url: str, http: aiohttp.ClientSession
) -> None:
    """An alert row appears PENDING, turns ACCEPTED then RESOLVED live, and counters reach 3."""
    page = browser_page
    await page.goto(f"{sandbox_url}/")
    loaded_at = await page.evaluate("window.sandboxPageLoadedAt")
    assert loaded_at
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "live", timeout=TIMEOUT_MS
    )
    row = page.locator(f'tr[data-alert-key="{ALERT_KEY}"]')
    steps = [("ALERT", "PENDING"), ("ACCEPT", "ACCEPTED"), ("RESOLVE", "RESOLVED")]
    for event_type, status in steps:
        body = {"eventType": event_type, "alertKey": ALERT_KEY, "summary": "disk full on db-1"}
        async with http.post(f"{sandbox_url}/api/v1/events/kafka/{KEY}", json=body) as response:
            assert response.status == 202
        await expect(row).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)
        await expect(row.locator(".badge")).to_have_text(status, timeout=TIMEOUT_MS)
    await expect(row).to_have_count(1)
    await expect(page.locator("#accepted-count")).to_have_text("3", timeout=TIMEOUT_MS)
    await expect(page.locator("#rejected-count")).to_have_text("0")
    await expect(page.locator("#stream-rows li")).to_have_count(3, timeout=TIMEOUT_MS)
    assert await page.evaluate("window.sandboxPageLoadedAt") == loaded_at, "the page reloaded"
