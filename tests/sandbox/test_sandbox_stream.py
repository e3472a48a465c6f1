"""The sandbox's live stream, web page and serve(): pushed updates, disconnects, clean stops."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from typing import Any

import aiohttp
import pytest

from ilagent.sandbox import SandboxConfig, serve
from ilagent.sandbox.core import SANDBOX

KEY = "il1api0000000000000001"
FRAME_TIMEOUT_S = 5.0


async def next_frame(response: aiohttp.ClientResponse) -> tuple[str, Any]:
    """The next SSE frame that is not a comment, as (event name, parsed data)."""
    while True:
        async with asyncio.timeout(FRAME_TIMEOUT_S):
            raw = await response.content.readuntil(b"\n\n")
        name, data = "message", None
        for line in raw.decode().splitlines():
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data = json.loads(line.removeprefix("data: "))
        if data is not None:
            return name, data


async def post_event(http: aiohttp.ClientSession, url: str, **fields: Any) -> int:
    body = {"integrationKey": KEY, "eventType": "ALERT", "summary": "cpu hot", **fields}
    async with http.post(f"{url}/api/events", json=body) as response:
        return response.status


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def test_stream_pushes_each_request_with_its_alert(
    http: aiohttp.ClientSession, sandbox_url: str
) -> None:
    """The stream says hello, then pushes every answered request with the alert it changed."""
    async with http.get(f"{sandbox_url}/sandbox/stream") as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        assert (await next_frame(stream))[0] == "hello"
        assert await post_event(http, sandbox_url, alertKey="s1") == 202
        name, message = await next_frame(stream)
        assert (name, message["type"]) == ("message", "request")
        assert (message["alert"]["alertKey"], message["alert"]["status"]) == ("s1", "PENDING")
        assert message["event"]["body"]["alertKey"] == "s1"
        assert message["request"]["status"] == 202
        assert message["stats"]["accepted"] == 1
        assert await post_event(http, sandbox_url, eventType="RESOLVE", alertKey="nope") == 400
        _, message = await next_frame(stream)
        assert (message["request"]["status"], message["alert"]) == (400, None)
        assert message["stats"]["rejected"] == 1
        async with http.delete(f"{sandbox_url}/sandbox"):
            pass
        _, message = await next_frame(stream)
        assert message["type"] == "reset"


async def test_client_disconnect_is_harmless(
    http: aiohttp.ClientSession,
    sandbox_factory: Any,
    wait_until: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stream client that goes away is dropped quietly and the API keeps answering."""
    sandbox = await sandbox_factory()
    hub = sandbox.runner.app[SANDBOX].hub
    async with http.get(f"{sandbox.url}/sandbox/stream") as stream:
        assert (await next_frame(stream))[0] == "hello"
        assert hub.listening
    # the closed connection is noticed at the next write
    assert await post_event(http, sandbox.url) == 202

    async def dropped() -> bool:
        if hub.listening:
            assert await post_event(http, sandbox.url) == 202
        return not hub.listening

    await wait_until(dropped, what="the hub to drop the gone client")
    assert server_errors(caplog) == []


async def test_server_stops_cleanly_with_open_stream(
    http: aiohttp.ClientSession, sandbox_factory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping the server ends open streams at once, without errors or cancelled handlers."""
    sandbox = await sandbox_factory()
    async with http.get(f"{sandbox.url}/sandbox/stream") as stream:
        assert (await next_frame(stream))[0] == "hello"
        async with asyncio.timeout(3.0):
            await sandbox.stop()
            assert await stream.content.read() == b""
    assert server_errors(caplog) == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_serve_logs_url_and_runs_until_cancelled(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """serve() sets `started` once listening, logs its URL at WARNING, and stops when cancelled."""
    caplog.set_level(logging.WARNING, logger="ilagent.sandbox")
    port = free_port()
    started = asyncio.Event()
    task = asyncio.create_task(serve(SandboxConfig(port=port), started=started))
    try:
        async with asyncio.timeout(5.0):
            await started.wait()
        url = f"http://127.0.0.1:{port}/"
        assert any(url in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
        async with http.get(url) as response:
            assert response.status == 200
            page = await response.text()
        assert 'id="accepted-count"' in page and 'id="rejected-count"' in page
        async with http.get(f"{url}static/sandbox.js") as response:
            assert response.status == 200
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    with socket.socket() as probe:
        # SO_REUSEADDR, as servers bind: ignores TIME_WAIT, still fails if anything listens
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()


async def test_scripted_latency_does_not_hold_up_shutdown(
    http: aiohttp.ClientSession,
    sandbox_factory: Any,
    wait_until: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request held by a long scripted latency is answered at once when the server stops."""
    sandbox = await sandbox_factory()
    fault = {"latency_ms": 60_000, "count": 1}
    async with http.post(f"{sandbox.url}/sandbox/faults", json=fault) as response:
        assert response.status == 201
    held = asyncio.create_task(post_event(http, sandbox.url))

    async def fault_taken() -> bool:
        async with http.get(f"{sandbox.url}/sandbox/faults") as response:
            return await response.json() == []

    await wait_until(fault_taken, what="the request to reach its scripted latency")
    async with asyncio.timeout(3.0):
        await sandbox.stop()
        assert await held == 202
    assert server_errors(caplog) == []
