"""The sandbox page links each alert to its story at the daemon's ``/trace`` (``--agent_url``)."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Page, expect

from ilagent.config import DEFAULT_AGENT_URL

KEY = "il1apitrace00000000001"
TIMEOUT_MS = 10_000


async def post(http: aiohttp.ClientSession, url: str, alert_key: str) -> None:
    body = {"eventType": "ALERT", "alertKey": alert_key, "summary": "press 1"}
    async with http.post(f"{url}/api/v1/events/kafka/{KEY}", json=body) as response:
        assert response.status == 202


async def test_the_page_is_served_with_the_agent_url(
        sandbox_factory: Any, http: aiohttp.ClientSession) -> None:
    """The page's embedded state names the daemon to link to: the default one (ilert's guide's
    port on this machine), or the one given."""
    for fields, expected in (({}, DEFAULT_AGENT_URL),
                             ({"agent_url": "http://10.0.0.5:9000/agent"},
                              "http://10.0.0.5:9000/agent")):
        sandbox = await sandbox_factory(**fields)
        async with http.get(f"{sandbox.url}/") as response:
            page = await response.text()
        state = re.search(r'<script id="initial-state" type="application/json">(.*?)</script>',
                          page, re.DOTALL)
        assert state is not None and json.loads(state.group(1))["agentUrl"] == expected


@pytest.mark.browser
async def test_each_alert_links_to_its_trace(
        browser_page: Page, sandbox_factory: Any,
        http: aiohttp.ClientSession) -> None:
    """An alert there before the page loaded and one arriving live each get a "trace" link to
    <agent_url>/trace?alert_key=<the key, encoded>; with --agent_url off there is none."""
    sandbox = await sandbox_factory(agent_url="http://127.0.0.1:8977")
    await post(http, sandbox.url, "line 3/press&1")
    page = browser_page
    await page.goto(f"{sandbox.url}/")
    await expect(page.locator("#connection")).to_have_attribute("data-state", "live",
                                                                timeout=TIMEOUT_MS)
    await post(http, sandbox.url, "OVEN-03")
    for alert_key, query in (("line 3/press&1", "line%203%2Fpress%261"),
                             ("OVEN-03", "OVEN-03")):
        link = page.locator(f'tr[data-alert-key="{alert_key}"] td.trace a')
        await expect(link).to_have_attribute(
            "href", f"http://127.0.0.1:8977/trace?alert_key={query}", timeout=TIMEOUT_MS)
        await expect(link).to_have_text("trace")
    quiet = await sandbox_factory(agent_url="")
    await post(http, quiet.url, "door")
    await page.goto(f"{quiet.url}/")
    await expect(page.locator('tr[data-alert-key="door"]')).to_have_count(1, timeout=TIMEOUT_MS)
    await expect(page.locator('tr[data-alert-key="door"] td.trace a')).to_have_count(0)
