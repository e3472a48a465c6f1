"""The sandbox page in headless Chromium follows an alert produced to Kafka, live, without reload."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from helpers import Sandbox, create_topic, produce, unique, wait_until

TIMEOUT_MS = 20_000


@pytest.mark.browser
async def test_page_shows_kafka_alarm_open_accept_resolve(
        browser_page: Page, kafka_bootstrap: str, sandbox: Sandbox, run_ilagent: Any) -> None:
    """Kafka SET, ACK, CLR through the daemon turn one row PENDING, ACCEPTED, RESOLVED live."""
    topic = create_topic(kafka_bootstrap, unique("page"))
    daemon = run_ilagent(
        "daemon", "-v", "-v", "--kafka_brokers", kafka_bootstrap, "--kafka_group_id", unique("g"),
        "-e", topic, "--event_key", unique("il1api"), "--map_key_alert_key", "mCode",
        "--map_key_summary", "comment", "--map_key_etype", "state",
        "--map_val_etype_alert", "SET", "--map_val_etype_accept", "ACK",
        "--map_val_etype_resolve", "CLR", "--filter_key", "type", "--filter_val", "ALARM")
    wait_until(lambda: "assigned " in daemon.output(), timeout=60, what="assignment")
    page = browser_page
    await page.goto(f"{sandbox.url}/")
    loaded_at = await page.evaluate("window.sandboxPageLoadedAt")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live",
                                                                timeout=TIMEOUT_MS)
    row = page.locator('tr[data-alert-key="OVEN-3"]')
    for state, status in (("SET", "PENDING"), ("ACK", "ACCEPTED"), ("CLR", "RESOLVED")):
        produce(kafka_bootstrap, topic, [{"type": "INFO", "mCode": "OVEN-3", "state": state},
                                         {"type": "ALARM", "mCode": "OVEN-3", "state": state,
                                          "comment": f"oven 3 {state}"}])
        await expect(row).to_have_attribute("data-status", status, timeout=TIMEOUT_MS)
    await expect(row).to_have_count(1)
    await expect(page.locator("#accepted-count")).to_have_text("3", timeout=TIMEOUT_MS)
    assert await page.evaluate("window.sandboxPageLoadedAt") == loaded_at, "the page reloaded"
    assert daemon.stop() == 0
