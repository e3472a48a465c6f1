"""The sandbox web page follows an alert's lifecycle live, in a real headless Chromium."""

from __future__ import annotations

import aiohttp
import pytest
from playwright.async_api import Page, expect

from helpers import plant_three

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


@pytest.mark.browser
async def test_policy_levels_show_seeding_a_shift_change_and_reset_live(
    browser_page: Page, sandbox_url: str, http: aiohttp.ClientSession
) -> None:
    """A seeded policy appears with its levels, a level update shows the new user on that level
    only, and a reset empties the list, all without reloading the page."""
    page = browser_page
    await page.goto(f"{sandbox_url}/")
    loaded_at = await page.evaluate("window.sandboxPageLoadedAt")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "live", timeout=TIMEOUT_MS
    )
    await expect(page.locator("#no-policies")).to_be_visible()
    seed = plant_three("page-api-key-0001")
    async with http.post(f"{sandbox_url}/sandbox/seed", json=seed) as response:
        assert response.status == 201
    policy = page.locator('[data-policy-id="3"]')
    await expect(policy).to_contain_text("Plant three", timeout=TIMEOUT_MS)
    await expect(policy).to_contain_text("powerplantthree50")
    level_0, level_1 = policy.locator('tr[data-level="0"]'), policy.locator('tr[data-level="1"]')
    await expect(level_1).to_have_attribute("data-users", "ann@example.com")
    await expect(page.locator("#no-policies")).to_be_hidden()

    update = {"escalationTimeout": 10, "users": [{"id": 8}]}
    headers = {"Authorization": "Bearer page-api-key-0001"}
    path = "/api/escalation-policies/3/levels/1"
    async with http.put(sandbox_url + path, json=update, headers=headers) as response:
        assert response.status == 200
    await expect(level_1).to_have_attribute("data-users", "bob@example.com", timeout=TIMEOUT_MS)
    await expect(level_1).to_contain_text("Bob Jones <bob@example.com>")
    await expect(level_1).to_have_class("flash")
    await expect(level_0).to_have_attribute("data-users", "ann@example.com")
    await expect(page.locator("#stream-rows li")).to_have_count(1, timeout=TIMEOUT_MS)

    async with http.delete(f"{sandbox_url}/sandbox") as response:
        assert response.status == 200
    await expect(policy).to_have_count(0, timeout=TIMEOUT_MS)
    await expect(page.locator("#no-policies")).to_be_visible()
    assert await page.evaluate("window.sandboxPageLoadedAt") == loaded_at, "the page reloaded"


@pytest.mark.browser
async def test_a_huge_summary_keeps_every_column_on_screen(
    browser_page: Page, sandbox_url: str, http: aiohttp.ClientSession
) -> None:
    """A 100,000-character summary (one long word) is cut with an ellipsis, whole in its
    tooltip; the page never scrolls sideways and the Last column stays in view."""
    page = browser_page
    await page.set_viewport_size({"width": 1280, "height": 800})
    summary = "x" * 100_000
    body = {"eventType": "ALERT", "alertKey": "huge", "summary": summary}
    async with http.post(f"{sandbox_url}/api/v1/events/kafka/{KEY}", json=body) as response:
        assert response.status == 202
    await page.goto(f"{sandbox_url}/")
    row = page.locator('tr[data-alert-key="huge"]')
    await expect(row).to_have_count(1, timeout=TIMEOUT_MS)
    widths = await page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], widths
    last = await row.locator("td").last.bounding_box()
    assert last is not None and last["x"] + last["width"] <= 1280
    assert await row.locator("[title]").first.get_attribute("title") == summary


@pytest.mark.browser
async def test_the_first_state_is_on_the_page_without_the_stream(
    browser_page: Page, sandbox_url: str, http: aiohttp.ClientSession
) -> None:
    """With the live stream unreachable, the page still shows the counters and alerts of the
    moment it was loaded, as soon as it has loaded (a screenshot right after load is right)."""
    page = browser_page
    for event_type in ("ALERT", "ACCEPT"):
        body = {"eventType": event_type, "alertKey": "first-state", "summary": "boiler"}
        async with http.post(f"{sandbox_url}/api/v1/events/kafka/{KEY}", json=body) as response:
            assert response.status == 202
    await page.route("**/sandbox/stream", lambda route: route.abort())
    await page.goto(f"{sandbox_url}/")
    assert await page.locator("#accepted-count").text_content() == "2"
    assert await page.locator("#open-count").text_content() == "1"
    row = page.locator('tr[data-alert-key="first-state"]')
    assert await row.get_attribute("data-status") == "ACCEPTED"
    assert await page.locator("#stream-rows li").count() == 2


@pytest.mark.browser
async def test_each_event_shows_the_route_that_sent_it(
    browser_page: Page, sandbox_url: str, http: aiohttp.ClientSession
) -> None:
    """An event posted with X-Ilagent-Route: line3 shows "line3" beside it, whether it was
    there when the page loaded or arrived live; one without the header shows no route; a route
    that looks like markup is shown as text, never run."""
    page = browser_page
    url = f"{sandbox_url}/api/v1/events/kafka/{KEY}"

    async def post(alert_key: str, route: str | None) -> None:
        headers = {"X-Ilagent-Route": route} if route is not None else {}
        body = {"eventType": "ALERT", "alertKey": alert_key, "summary": f"press {alert_key}"}
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 202

    await post("before-load", "line3")
    await page.goto(f"{sandbox_url}/")
    await expect(page.locator("#connection")).to_have_attribute(
        "data-state", "live", timeout=TIMEOUT_MS
    )
    await post("live", "line3")
    await post("no-route", None)
    markup = '<img src=x onerror="window.injected=1">'
    await post("markup", markup)
    items = page.locator("#stream-rows li")
    await expect(items).to_have_count(4, timeout=TIMEOUT_MS)
    routed = page.locator('#stream-rows li[data-route="line3"]')
    await expect(routed).to_have_count(2)
    for index in range(2):
        await expect(routed.nth(index).locator(".route")).to_have_text("line3")
    await expect(page.locator('#stream-rows li[data-route=""] .route')).to_have_count(0)
    tagged = page.locator("#stream-rows li .route").filter(has_text="onerror")
    await expect(tagged).to_have_text(markup)
    assert await page.locator("#stream-rows img").count() == 0
    assert await page.evaluate("window.injected") is None
