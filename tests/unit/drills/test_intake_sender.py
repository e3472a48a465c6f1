"""The intake's drill sender posts to the daemon's own /api/events, directly, whatever proxy the
environment names: the drill's event then reaches ilert by the ilert client, through the proxy.

Real parts only: an intake stand-in served by aiohttp, and a real HTTP proxy
(tests/http_proxy.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from http_proxy import HttpProxy
from ilagent.config import HttpSettings
from ilagent.drills.marks import INTAKE_HEADER
from ilagent.drills.sending import IntakeDrills

SAMPLE = b'{"integrationKey": "il1apiDRILL000001", "summary": "drill"}'


@pytest.fixture
async def intake() -> AsyncIterator[tuple[TestServer, list[str]]]:
    """A stand-in for the daemon's intake on 127.0.0.1, and the drill ids it took."""
    taken: list[str] = []

    async def events(request: web.Request) -> web.Response:
        taken.append(request.headers[INTAKE_HEADER])
        return web.json_response({"queued": 1}, status=202)

    app = web.Application()
    app.router.add_post("/api/events", events)
    async with TestServer(app, host="127.0.0.1") as server:
        yield server, taken


async def test_a_drill_posts_to_the_daemons_own_intake_never_through_a_proxy(
        intake: tuple[TestServer, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    """HTTP_PROXY and HTTPS_PROXY set, NO_PROXY not: the drill's POST to the daemon's loopback
    still connects directly (a proxy elsewhere cannot reach this host's loopback)."""
    server, taken = intake
    async with HttpProxy() as proxy:
        for variable in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
            monkeypatch.setenv(variable, proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        sender = IntakeDrills(settings=HttpSettings(port=server.port or 0, host="0.0.0.0"),
                              timeout=5.0)
        sender.start()
        try:
            sent = await sender.send("drill-7", SAMPLE)
        finally:
            await sender.close()
    assert sent.error == "" and sent.where.startswith("POST /api/events")
    assert taken == ["drill-7"]
    assert (proxy.connects, proxy.forwarded) == (0, 0)
